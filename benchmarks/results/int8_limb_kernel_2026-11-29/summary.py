"""Per shape and rows: the baselines and the fastest tiles of a limb_kernel.py record."""
import collections
import json
import sys

groups = collections.defaultdict(list)
for line in open(sys.argv[1]):
    record = json.loads(line)
    groups[(record["shape"], record["rows"])].append(record)
for (shape, rows), records in groups.items():
    timed = [r for r in records if "us" in r]
    named = {r["way"]: r["us"] for r in timed if isinstance(r["way"], str)}
    tiles = sorted((r for r in timed if not isinstance(r["way"], str)), key=lambda r: r["us"])
    failed = sum("error" in r for r in records)
    best = ", ".join(f'{tuple(r["way"])} {r["us"]:.1f} ({r["relative_error"]:.2e})' for r in tiles[:3])
    print(f"{shape} {rows}: " + ", ".join(f"{k} {v:.1f}" for k, v in named.items()) + f"; best {best}; failed {failed}")
