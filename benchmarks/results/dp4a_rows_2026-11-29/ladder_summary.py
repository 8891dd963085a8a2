"""ladder.py's records as a table: microseconds (TB/s) by kind and shape, each rung."""
import json
import sys
from collections import defaultdict

table = defaultdict(dict)
for line in open(sys.argv[1]):
    record = json.loads(line)
    table[(record["bits"], record["shape"], record["bytes"])][record["way"]] = (record["us"], record.get("config"))
ways = ["read only", "codes", "codes + limbs", "codes + limbs + scales", "dp4a product", "shipped"]
print("kind shape | " + " | ".join(ways))
for (bits, shape, size), cells in table.items():
    print(f"int{bits} {shape} | " + " | ".join(
        f"{cells[w][0]:.2f} ({size / cells[w][0] / 1e6:.2f}) {cells[w][1] or ''}" if w in cells else "-" for w in ways))
