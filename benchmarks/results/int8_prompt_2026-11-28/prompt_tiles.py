"""int8 prompt tiles outside ROWS_TILES (2026-11-28, twenty-third session). At 96 rows the shipped int8 launch reads
q|k|v in 42.6 us (1.18 TB/s of codes) and gate|up in 75.2 where bf16 cuBLAS takes 29.3 and 52.4 (prologue_mm.py):
its 64-output tiles make 192 programs for q|k|v, 1.45 waves of 132 SMs, and 7.6 instructions a weight (compiled for
sm_90). Here narrower and deeper tiles, both orientations, with and without split steps, against the autotuned
launch and bf16 cuBLAS; copies of the weights (>= 200 MB) replayed from a CUDA graph, microseconds a product.

    python benchmarks/results/int8_prompt_2026-11-28/prompt_tiles.py --output prompt_tiles.jsonl
"""
import argparse
import itertools
import math
import os
import sys

import torch

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(BENCHMARKS))
sys.path.insert(0, BENCHMARKS)

from bench_records import append_record  # noqa: E402
from profile_decode import replay_seconds  # noqa: E402
from quantized_decode_kernels import TILE_FIELDS, launch_quantized_kernel, packed_weight  # noqa: E402
from quantized_decode_kernels import reference_product  # noqa: E402

SHAPES = {"q|k|v": (12288, 4096), "gate|up": (22016, 4096)}
TILES = ([(False, 128, n, k, stages, split) for n, k, stages, split in itertools.product(
             (32, 64), (64, 128, 256), (3, 4), (1, 2))]
         + [(True, 128, n, k, stages, split) for n, k, stages, split in itertools.product(
             (64, 128), (64, 128), (3, 4), (1, 2))]
         + [(False, 64, 64, 128, 3, 1), (False, 64, 128, 128, 3, 1), (True, 64, 64, 128, 3, 2)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="prompt_tiles.jsonl")
    parser.add_argument("--rows", type=int, default=96)
    parser.add_argument("--baselines_only", action="store_true", help="only the autotuned launch and cuBLAS")
    args = parser.parse_args()
    for shape, (n, k) in SHAPES.items():
        copies = max(4, math.ceil(200e6 / (n * k)))
        bf16 = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5 for _ in range(copies)]
        packed = [packed_weight(w, 8) for w in bf16]
        x = torch.randn(args.rows, k, device="cuda", dtype=torch.bfloat16)
        reference = reference_product(x.float(), [packed[0]._replace(scale=packed[0].scale.float())])
        baseline = {"autotuned": lambda: [launch_quantized_kernel(x, [w]) for w in packed],
                    "bf16 cuBLAS": lambda: [x @ w.t() for w in bf16]}
        for name, call in baseline.items():
            append_record(args.output, dict(shape=shape, rows=args.rows, config=name,
                                            us=replay_seconds(call) / copies * 1e6))
        for tile in [] if args.baselines_only else TILES:
            config = {**dict(zip(TILE_FIELDS, tile)), "num_warps": 4}
            try:
                out = launch_quantized_kernel(x, [packed[0]], config)
                error = float((out.float() - reference).norm() / reference.norm())
                seconds = replay_seconds(lambda: [launch_quantized_kernel(x, [w], config) for w in packed])
            except Exception as exception:  # noqa: BLE001 - a tile that does not compile or fit is recorded
                append_record(args.output, dict(shape=shape, rows=args.rows, config=tile, error=str(exception)[:160]))
                continue
            append_record(args.output, dict(shape=shape, rows=args.rows, config=tile, us=seconds / copies * 1e6,
                                            TBps=n * k / seconds * copies / 1e12, relative_error=error))


if __name__ == "__main__":
    with torch.no_grad():
        main()
