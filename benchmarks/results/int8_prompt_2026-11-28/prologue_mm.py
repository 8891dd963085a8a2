"""int8 prompts (2026-11-28, twenty-third session): Inductor's matmul templates with the int8-to-bf16 conversion fused
into their loads (prologue fusion, on by default since torch 2.6; `max-autotune-no-cudagraphs` chooses among Triton
templates and cuBLAS), against the shipped several-row int8 launch and bf16 cuBLAS, 7B shapes. int8's first token
trails bf16's by 3-19% because its prompt products at 96 rows stream about 1.2 TB/s of int8 codes where cuBLAS streams
about 3.4 of bf16 (q|k|v 41.9 against 29-30 us, nineteenth session). Copies of each weight (>= 200 MB) replayed from a
CUDA graph; microseconds a product.

    python benchmarks/results/int8_prompt_2026-11-28/prologue_mm.py --output prologue_mm.jsonl
"""
import argparse
import math
import os
import sys
import time

import torch

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(BENCHMARKS))
sys.path.insert(0, BENCHMARKS)

from bench_records import append_record  # noqa: E402
from profile_decode import replay_seconds  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel, packed_weight  # noqa: E402

SHAPES = {"q|k|v": (12288, 4096), "o": (4096, 4096), "gate|up": (22016, 4096), "down": (4096, 11008)}


def dequantized_product(x: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x @ (codes * scale[:, None]).T with the row scales applied to the sums (exact codes in bf16)."""
    return torch.mm(x, codes.to(x.dtype).t()) * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="prologue_mm.jsonl")
    parser.add_argument("--rows", default="96", help="prompt rows to measure, comma-separated")
    args = parser.parse_args()
    compiled = torch.compile(dequantized_product, mode="max-autotune-no-cudagraphs", dynamic=False)
    for rows in map(int, args.rows.split(",")):
        for shape, (n, k) in SHAPES.items():
            copies = max(4, math.ceil(200e6 / (n * k)))
            bf16 = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5 for _ in range(copies)]
            packed = [packed_weight(w, 8) for w in bf16]
            x = torch.randn(rows, k, device="cuda", dtype=torch.bfloat16)
            reference = dequantized_product(x.float(), packed[0].qweight, packed[0].scale.float())
            started = time.perf_counter()
            fused = compiled(x, packed[0].qweight, packed[0].scale)
            compile_s = time.perf_counter() - started
            shipped = launch_quantized_kernel(x, [packed[0]])
            errors = {name: float((out.float() - reference).norm() / reference.norm())
                      for name, out in (("inductor", fused), ("shipped", shipped))}
            micros = {
                "shipped": replay_seconds(lambda: [launch_quantized_kernel(x, [w]) for w in packed]),
                "inductor": replay_seconds(lambda: [compiled(x, w.qweight, w.scale) for w in packed]),
                "bf16 cuBLAS": replay_seconds(lambda: [x @ w.t() for w in bf16]),
            }
            micros = {name: seconds / copies * 1e6 for name, seconds in micros.items()}
            append_record(args.output, dict(rows=rows, shape=shape, compile_s=compile_s, errors=errors,
                                            **{f"{name} us": us for name, us in micros.items()},
                                            int8_TBps_inductor=n * k / micros["inductor"] / 1e6,
                                            int8_TBps_shipped=n * k / micros["shipped"] / 1e6))


if __name__ == "__main__":
    with torch.no_grad():
        main()
