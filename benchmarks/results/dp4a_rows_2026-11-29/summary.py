"""dp4a_rows.py's records in short: per kind and shape, the shipped launch, bf16 cuBLAS, the limbs kernel and the
fastest dp4a configurations (microseconds, TB/s of codes, scales and offsets, relative errors)."""
import json
import sys
from collections import defaultdict

SHAPES = {"q|k|v": (12288, 4096), "o": (4096, 4096), "gate|up": (22016, 4096), "down": (4096, 11008)}


def weight_bytes(bits: int, shape: str) -> float:
    n, k = SHAPES[shape]
    return n * k / 2 + 2 * 2 * n * k / 64 if bits == 4 else n * k + 2 * n


def main(path: str) -> None:
    records = defaultdict(list)
    for line in open(path):
        record = json.loads(line)
        records[record["bits"], record["shape"]].append(record)
    for (bits, shape), rows in records.items():
        print(f"int{bits} {shape}:")
        fast = [r for r in rows if "us" in r and isinstance(r["way"], list)]
        for r in rows:
            if not isinstance(r["way"], list):
                extra = {key: r[key] for key in r if key.startswith(("error", "words", "powers", "sums"))}
                stored = 2 * SHAPES[shape][0] * SHAPES[shape][1] if "bf16" in r["way"] else weight_bytes(bits, shape)
                rate = f"{stored / r['us'] / 1e6:.2f} TB/s" if "limbs" not in r["way"] else ""
                print(f"  {r['way']:<22} {r['us']:8.2f} us {rate} {extra}")
        for limbs in (2, 3):
            best = sorted((r for r in fast if r["way"][1] == limbs), key=lambda r: r["us"])[:4]
            for r in best:
                print(f"  dp4a {limbs} limbs {str(r['way'][2:]):<16} {r['us']:8.2f} us "
                      f"{weight_bytes(bits, shape) / r['us'] / 1e6:.2f} TB/s  errors {r['error_unrounded']:.2e} / "
                      f"{r['error_dequantized']:.2e}")
        failed = [r for r in rows if "error" in r]
        if failed:
            print(f"  {len(failed)} failed, e.g. {failed[0]['way']}: {failed[0]['error'][-160:]}")


if __name__ == "__main__":
    main(sys.argv[1])
