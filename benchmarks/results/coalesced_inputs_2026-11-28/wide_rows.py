"""One-row int4 tiles outside ROW_CONFIGS (2026-11-28, twenty-third session): more rows and wider steps a program with
the 16-bit pair products (the thirteenth session's wide-step sweep ran the float32 loop). Compiled for sm_90,
Triton lays 8-16 rows x 1-2K inputs with 3.8-4.0 instructions a weight and fewer input loads a weight than the
shipped 8 x 512 (4.16), at the price of shared-memory layout conversions. 7B shapes, int4, copies of the weights
(>= 200 MB) replayed from a CUDA graph, against the autotuned launch, twice each.

    python benchmarks/results/coalesced_inputs_2026-11-28/wide_rows.py --output wide_rows.jsonl
"""
import argparse
import math
import os
import sys

import torch

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(BENCHMARKS))
sys.path.insert(0, BENCHMARKS)

from bench_records import append_record  # noqa: E402
from profile_decode import replay_seconds, rotated_quantized_weights  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel  # noqa: E402

SHAPES = {"q|k|v": [(4096, 4096)] * 3, "o": [(4096, 4096)], "gate|up, gated": [(11008, 4096)] * 2,
          "down": [(4096, 11008)]}
TILES = [(8, 512, 4), (8, 1024, 4), (8, 1024, 8), (8, 2048, 4), (8, 2048, 8), (16, 512, 4), (16, 512, 8),
         (16, 1024, 4), (16, 1024, 8), (16, 2048, 8), (32, 256, 4), (32, 512, 8), (32, 1024, 8), (4, 2048, 2),
         (4, 2048, 4), (64, 256, 8)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="wide_rows.jsonl")
    args = parser.parse_args()
    for shape, parts in SHAPES.items():
        gated = "gated" in shape
        _, one_bytes = rotated_quantized_weights(4, parts, 1)
        copies = max(6, math.ceil(200e6 / one_bytes))
        sets, nbytes = rotated_quantized_weights(4, parts, copies)
        x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
        configs = [None] + [{"BLOCK_M": 1, "BLOCK_N": n, "BLOCK_K": k, "BIT_CAST": False, "num_warps": w}
                            for n, k, w in TILES]
        for repeat in range(2):
            for config in configs:
                def call(config=config):
                    return [launch_quantized_kernel(x, weights, config, gated=gated) for weights in sets]

                try:
                    seconds = replay_seconds(call)
                except Exception as error:  # noqa: BLE001 - a tile that does not compile or fit is recorded
                    append_record(args.output, dict(shape=shape, config=config, error=str(error)[:160]))
                    continue
                append_record(args.output, dict(shape=shape, repeat=repeat, config=config or "autotuned",
                                                us=seconds / copies * 1e6, TBps=nbytes / seconds / 1e12))


if __name__ == "__main__":
    with torch.no_grad():
        main()
