"""Long prompts over quantized weights (2026-11-29, twenty-fifth session): the shipped several-row launch against
dequantizing the weights into a bf16 copy and one cuBLAS matmul (quantized_decode_kernels.dequantized_product), and
bf16 cuBLAS over bf16 weights, per 7B shape and prompt length, int8 and int4.

The kernels' tiles dequantize in registers and reach a fraction of cuBLAS's rate once the rows make the product
compute-bound (int8 at 256 rows: q|k|v 69 us against cuBLAS's 40); the copy costs a fixed read + write of the weight,
so from some length on it pays. Microseconds a product, weights in copies (>= 200 MB) replayed from a CUDA graph;
the dequantized product's relative error against dequantize-then-matmul beside it (the same weights: rounding of
the sums only).

    python benchmarks/results/long_prompts_2026-11-29/long_prompts.py --output long_prompts.jsonl   # one GPU
"""
import argparse
import math
import os
import sys

import torch

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.dirname(BENCHMARKS), BENCHMARKS]

from bench_records import append_record  # noqa: E402
from profile_decode import replay_seconds  # noqa: E402
from quantized_decode_kernels import dequantized_product, launch_quantized_kernel, packed_weight  # noqa: E402
from quantized_decode_kernels import reference_product  # noqa: E402

SHAPES = {"q|k|v": [(4096, 4096)] * 3, "o": [(4096, 4096)], "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="long_prompts.jsonl")
    parser.add_argument("--rows", default="128,256,384,512,768,1024,2048,4096")
    parser.add_argument("--bits", default="8,4")
    args = parser.parse_args()
    for shape, parts in SHAPES.items():
        n, k = sum(rows for rows, _ in parts), parts[0][1]
        copies = max(3, math.ceil(200e6 / (n * k)))
        bf16 = [[torch.randn(rows, k, device="cuda", dtype=torch.bfloat16) / k**0.5 for rows, _ in parts]
                for _ in range(copies)]
        stacked = [torch.cat(weights) for weights in bf16]
        for rows in map(int, args.rows.split(",")):
            x = torch.randn(rows, k, device="cuda", dtype=torch.bfloat16)
            record = dict(shape=shape, rows=rows)
            append_record(args.output, dict(record, way="bf16 cuBLAS",
                                            us=replay_seconds(lambda: [x @ w.t() for w in stacked]) / copies * 1e6))
            for bits in map(int, args.bits.split(",")):
                packed = [[packed_weight(w, bits) for w in weights] for weights in bf16]
                reference = reference_product(x.float(), [w._replace(scale=w.scale.float(), offset=None if w.offset
                                                                     is None else w.offset.float()) for w in packed[0]])
                for way, product in (("shipped", launch_quantized_kernel), ("dequantized", dequantized_product)):
                    error = float((product(x, packed[0]).float() - reference).norm() / reference.norm())
                    seconds = replay_seconds(lambda: [product(x, weights) for weights in packed])
                    append_record(args.output, dict(record, way=way, bits=bits, us=seconds / copies * 1e6,
                                                    relative_error=error))


if __name__ == "__main__":
    with torch.no_grad():
        main()
