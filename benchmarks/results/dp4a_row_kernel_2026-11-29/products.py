"""The four batch-1 products of a 7B layer as the fast decoder calls them (q|k|v stacked, gate|up SiLU-gated, o and
down with the residual add and norm in their launch), through quantized_decode_kernels' ops: the one-row products
on dp4a (quantized_row_kernel.py, the default on sm_80 and later) against the Triton launch (routing turned off),
microseconds a product over weight copies (>= 200 MB) replayed from a CUDA graph, int4 and int8.

    python benchmarks/results/dp4a_row_kernel_2026-11-29/products.py --output products.jsonl   # one GPU
"""
import argparse
import math
import os
import sys

import torch

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.dirname(BENCHMARKS), BENCHMARKS]

import quantized_decode_kernels as kernels  # noqa: E402
import quantized_row_kernel  # noqa: E402
from bench_records import append_record  # noqa: E402
from profile_decode import replay_seconds  # noqa: E402

PRODUCTS = {"q|k|v": ([4096] * 3, 4096), "gate|up, gated": ([11008] * 2, 4096), "o + norm": ([4096], 4096),
            "down + norm": ([4096], 11008)}


def product_case(bits: int, name: str) -> tuple:
    """(bytes of one copy's weights, weight copies, the product as the decoder calls it over one copy): for a
    product of PRODUCTS over `bits`-bit weights, copies enough to pass 200 MB."""
    sizes, width = PRODUCTS[name]
    size = sum(sizes) * width // (2 if bits == 4 else 1)
    copies = max(6, math.ceil(200e6 / size))
    base = [torch.randn(rows, width, device="cuda", dtype=torch.bfloat16) / width**0.5 for rows in sizes]
    sets = [[kernels.packed_weight(w + i / width, bits) for w in base] for i in range(copies)]
    x = torch.randn(1, width, device="cuda", dtype=torch.bfloat16)
    residual = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
    norm = torch.ones(4096, device="cuda", dtype=torch.bfloat16)

    def product(weights):
        if name.startswith("gate"):
            return kernels.quantized_gated(x, *weights)
        if name.endswith("norm"):
            return kernels.quantized_residual_norm(x, weights[0], residual=residual, norm=norm, eps=1e-5)
        return kernels.quantized_product(x, weights)

    return size, sets, product


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="products.jsonl")
    parser.add_argument("--routed", default=None,
                        help="weight bits the dp4a kernels take, e.g. 4,8 (default: ROW_KERNEL_BITS)")
    args = parser.parse_args()
    if args.routed:
        quantized_row_kernel.ROW_KERNEL_BITS = tuple(int(bits) for bits in args.routed.split(","))
    shipped = kernels.takes_row_kernel
    for bits in (4, 8):
        for name in PRODUCTS:
            size, sets, product = product_case(bits, name)
            copies = len(sets)
            outputs = {}
            for way, route in (("dp4a", shipped), ("triton", lambda *a, **k: False)):
                kernels.takes_row_kernel = route
                result = product(sets[0])
                outputs[way] = (result[1] if isinstance(result, tuple) else result).double()
                us = replay_seconds(lambda: [product(weights) for weights in sets]) / copies * 1e6
                append_record(args.output, dict(bits=bits, product=name, way=way, us=us, TBps=size / us / 1e6))
                print(bits, name, way, f"{us:.2f} us")
            kernels.takes_row_kernel = shipped
            difference = float((outputs["dp4a"] - outputs["triton"]).norm() / outputs["triton"].norm())
            append_record(args.output, dict(bits=bits, product=name, relative_difference=difference))
            print(bits, name, f"dp4a against triton: relative difference {difference:.2e}")


if __name__ == "__main__":
    with torch.no_grad():
        main()
