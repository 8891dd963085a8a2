"""Each tile of the dp4a one-row kernels (quantized_row_kernel.py) forced in turn on the four batch-1 products of a 7B
layer as the fast decoder calls them (q|k|v stacked, gate|up SiLU-gated, o and down with the residual add and norm
in their launch), against the shipped choice (autotune among ROW_TILES): microseconds a product over weight copies
(>= 200 MB) replayed from a CUDA graph. Candidates: ROW_TILES and tiles of 2 rows a thread, 2 warps along the rows
or 2 along the inputs, which the shipped set lacks.

    python benchmarks/results/row_tiles_2026-11-29/tiles.py --bits 8 --output tiles.jsonl   # one GPU
"""
import argparse
import os
import sys

import torch

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRODUCTS_SCRIPT = os.path.join(BENCHMARKS, "results", "dp4a_row_kernel_2026-11-29")  # products.py: the same cases
sys.path[:0] = [os.path.dirname(BENCHMARKS), BENCHMARKS, PRODUCTS_SCRIPT]

import triton  # noqa: E402

import quantized_decode_kernels as kernels  # noqa: E402
from bench_records import append_record  # noqa: E402
from products import PRODUCTS, product_case  # noqa: E402
from profile_decode import replay_seconds  # noqa: E402
from quantized_row_kernel import ROW_TILES  # noqa: E402

EXTRA_TILES = ((2, 1, 1, 4), (2, 1, 1, 8), (2, 1, 2, 2), (2, 2, 1, 4), (2, 1, 2, 4), (4, 1, 2, 2), (4, 1, 2, 4),
               (8, 2, 1, 4), (4, 1, 1, 2))


def config(tile: tuple) -> triton.Config:
    return triton.Config(dict(zip(("R", "C", "WR", "WC"), tile)), num_warps=tile[2] * tile[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="tiles.jsonl")
    parser.add_argument("--bits", default="8,4", help="weight formats, e.g. 8 or 8,4")
    args = parser.parse_args()
    tuners = (kernels._dp4a_row_kernel, kernels._dp4a_residual_norm_kernel)
    shipped = [list(tuner.configs) for tuner in tuners]
    for bits in (int(value) for value in args.bits.split(",")):
        for name in PRODUCTS:
            size, sets, product = product_case(bits, name)
            copies = len(sets)
            results = {}
            for tile in ("autotuned", *ROW_TILES, *EXTRA_TILES):
                for tuner, configs in zip(tuners, shipped):
                    tuner.configs = configs if tile == "autotuned" else [config(tile)]
                    tuner.cache.clear()
                product(sets[0])
                if tile == "autotuned":
                    chosen = (kernels._dp4a_residual_norm_kernel if name.endswith("norm")
                              else kernels._dp4a_row_kernel).best_config.kwargs
                us = replay_seconds(lambda: [product(weights) for weights in sets]) / copies * 1e6
                results[str(tile)] = us
                append_record(args.output, dict(bits=bits, product=name, tile=tile, us=us, TBps=size / us / 1e6,
                                                chosen=str(chosen) if tile == "autotuned" else None))
            best = min((us, tile) for tile, us in results.items() if tile != "autotuned")
            print(bits, name, f"autotuned {results['autotuned']:.2f} us ({chosen}), fastest {best[1]} "
                  f"{best[0]:.2f} us", flush=True)


if __name__ == "__main__":
    with torch.no_grad():
        main()
