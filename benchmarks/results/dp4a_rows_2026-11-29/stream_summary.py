"""stream_floor.py's records in short: per kind and shape, microseconds for the fastest read-only launch, torch.sum,
and the shipped launch (bf16: cuBLAS) over the same bytes, with what each reads a second; then 32 layers of the four
products at each."""
import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    records = [json.loads(line) for line in open(path)]
    by_kind = defaultdict(dict)
    for record in records:
        if "kind" not in record:
            print({key: value for key, value in record.items()})
            continue
        by_kind[record["kind"]].setdefault(record["shape"], {})[record["way"]] = record
    for kind, shapes in by_kind.items():
        print(f"{kind}:")
        totals = defaultdict(float)
        for shape, ways in shapes.items():
            cells = []
            for way, record in ways.items():
                totals[way] += 32 * record["us"] / 1e3
                cells.append(f"{way} {record['us']:.2f} us ({record['bytes'] / record['us'] / 1e6:.2f} TB/s)")
            print(f"  {shape:<8} {ways[next(iter(ways))]['bytes'] / 1e6:6.1f} MB: " + "; ".join(cells))
        print("  32 layers: " + "; ".join(f"{way} {ms:.3f} ms" for way, ms in totals.items()))


if __name__ == "__main__":
    main(sys.argv[1])
