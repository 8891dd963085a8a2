"""What one launch costs beyond its bytes, one row (prepared 2026-11-28, twenty-second session; not yet run): the same
weights read by one launch (q|k|v stacked, `launch_quantized_kernel` over three weights) and by three (q, k and v
apart), int4 and int8, CUDA-graph replays over copies L2 cannot hold. The difference over two is the fixed cost of a
launch (start, ramp, last wave, the gap to the next), which a persistent kernel over a layer would save; this
session's stream timings put it near 2.7 us (benchmarks/RESULTS.md).

    python benchmarks/results/launch_cost_2026-11-28/launch_cost.py --output launch_cost.jsonl
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="launch_cost.jsonl")
    parser.add_argument("--width", type=int, default=4096, help="each weight's outputs and inputs")
    args = parser.parse_args()
    parts = [(args.width, args.width)] * 3
    x = torch.randn(1, args.width, device="cuda", dtype=torch.bfloat16)
    for bits in (4, 8):
        _, one_bytes = rotated_quantized_weights(bits, parts, 1)
        copies = max(6, math.ceil(300e6 / one_bytes))
        sets, nbytes = rotated_quantized_weights(bits, parts, copies)
        ways = {"one launch": lambda: [launch_quantized_kernel(x, weights) for weights in sets],
                "three launches": lambda: [launch_quantized_kernel(x, [weight]) for weights in sets
                                           for weight in weights]}
        ways["one launch"]()  # autotune each shape before timing
        ways["three launches"]()
        micros = {way: replay_seconds(call) / copies * 1e6 for way, call in ways.items()}
        launch_us = (micros["three launches"] - micros["one launch"]) / 2
        row = dict(bits=bits, copies=copies, MB=nbytes / copies / 1e6, launch_us=launch_us,
                   one_launch_TBps=nbytes / copies / micros["one launch"] / 1e6,
                   **{f"{way} us": us for way, us in micros.items()})
        append_record(args.output, row)


if __name__ == "__main__":
    with torch.no_grad():
        main()
