"""The fastest configurations of a sweep_tiles.py record, by rows and shape (and SPLIT_K where the record has it),
beside the shipped launch and bf16 F.linear.
    python benchmarks/results/quantized_decoding_2026-11-28e/summary.py RECORD.jsonl"""
import json
import sys

records = [json.loads(line) for line in open(sys.argv[1])]
for rows in sorted({record["rows"] for record in records}):
    for shape in ("q|k|v", "o", "gate|up", "down"):
        mine = [record for record in records if record["rows"] == rows and record["shape"] == shape]
        fixed = {record["config"]: record["us"] for record in mine if isinstance(record["config"], str)}
        timed = [record for record in mine if isinstance(record["config"], dict) and "us" in record]
        splits = sorted({record["config"].get("SPLIT_K", 1) for record in timed})
        best = [min((r for r in timed if r["config"].get("SPLIT_K", 1) == split), key=lambda r: r["us"])
                for split in splits]
        print(f"{rows} rows, {shape}: {fixed}", *(f"split {r['config'].get('SPLIT_K', 1)}: {r['us']} us "
                                    f"{tuple(list(r['config'].values())[:5])} err {r['relative_error']}"
                                    for r in best), sep="\n  ")
