"""flat_rows.py's records in short: per kind and shape, the shipped launch, the read-only floor and the fastest
configurations of each Gluon kernel (microseconds, TB/s of the stored bytes, relative error)."""
import json
import sys
from collections import defaultdict

records = defaultdict(list)
for line in open(sys.argv[1]):
    record = json.loads(line)
    records[(record["bits"], record["shape"], record["bytes"])].append(record)
for (bits, shape, size), rows in records.items():
    print(f"int{bits} {shape}:")
    for r in rows:
        if "largest_difference" in r:
            print(f"  {r['way']}: largest difference {r['largest_difference']:.2e} of the largest output")
        elif isinstance(r["way"], str):
            print(f"  {r['way']:<12} {r['us']:7.2f} us ({size / r['us'] / 1e6:.2f} TB/s) error {r.get('error', '-')}")
    for name in ("gluon direct", "gluon limbs", "gluon limbs inline"):
        timed = sorted((r for r in rows if isinstance(r["way"], list) and r["way"][0] == name and "us" in r),
                       key=lambda r: r["us"])
        for r in timed[:3]:
            print(f"  {name:<12} {r['us']:7.2f} us ({size / r['us'] / 1e6:.2f} TB/s) {r['way'][1:]} "
                  f"error {r['error']:.2e}")
    failed = [r for r in rows if "failed" in r]
    if failed:
        print(f"  {len(failed)} failed, e.g. {failed[0]['way']}: {failed[0]['failed'][-200:]}")
