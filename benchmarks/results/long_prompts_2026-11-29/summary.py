"""A long_prompts.py record as a table: microseconds a product by shape and rows."""
import collections
import json
import sys

table = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    record = json.loads(line)
    way = record["way"] + (f" int{record['bits']}" if "bits" in record else "")
    table[(record["shape"], record["rows"])][way] = record["us"]
ways = ["bf16 cuBLAS", "shipped int8", "dequantized int8", "shipped int4", "dequantized int4"]
print("shape rows | " + " | ".join(ways))
for (shape, rows), timings in table.items():
    print(f"{shape} {rows} | " + " | ".join(f"{timings[way]:.1f}" if way in timings else "-" for way in ways))
