"""One-row quantized products whose inputs are split among programs (quantized_decode_kernels.py, ROW_CONFIGS with
SPLIT_K > 1) against the unsplit configurations, which were autotune's only candidates before: every configuration of
ROW_CONFIGS that fits each 7B shape (q|k|v, o, gate|up gated, down; int4 and int8), 6 weight copies rotated so that L2
cannot serve them, CUDA-graph replays, TB/s of codes, scales and offsets, and what autotune picks ("fast path").

    python benchmarks/results/row_splits_2026-11-28/row_splits.py --output row_splits.jsonl
"""

import argparse
import json
import os
import sys

import torch

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(BENCHMARKS))
sys.path.insert(0, BENCHMARKS)

from profile_decode import replay_seconds, rotated_quantized_weights  # noqa: E402
from quantized_decode_kernels import ROW_CONFIGS, launch_quantized_kernel, row_config_fits  # noqa: E402

SHAPES = {"q|k|v": [(4096, 4096)] * 3, "o": [(4096, 4096)], "gate|up, gated": [(11008, 4096)] * 2,
          "down": [(4096, 11008)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="row_splits.jsonl")
    args = parser.parse_args()
    copies = 6
    for bits in (4, 8):
        for name, parts in SHAPES.items():
            gated = name.endswith("gated")
            sets, nbytes = rotated_quantized_weights(bits, parts, copies)
            x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
            configs = [config for config in ROW_CONFIGS if row_config_fits(config, {"INT4": bits == 4, "GATED": gated})]
            for config in [None] + configs:
                seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w, config, gated=gated) for w in sets])
                row = dict(bits=bits, shape=name, config=config or "fast path", TBps=nbytes / seconds / 1e12,
                           us=seconds / copies * 1e6)
                print(json.dumps(row), flush=True)
                with open(args.output, "a") as handle:
                    handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    with torch.no_grad():
        main()
