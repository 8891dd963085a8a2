"""How fast can one launch read a batch-1 product's bytes at all? (2026-11-29, twenty-sixth session)

dp4a_rows.py halved the int4 one-row loop's instructions and the products took as long (and the twenty-third
session's weights in L2 took as long too). So this times launches that only read: the same bytes as each 7B
product's weights (int4: codes, scales, offsets; int8: codes, scales; bf16), in copies (>= 200 MB) replayed from a
CUDA graph, by
- `_read_kernel`: programs that each read a contiguous run of int64 words (BLOCK words a step, STEPS steps, 128-bit
  loads) and write one sum: a sweep of run lengths and warps, the fastest kept;
- torch.sum over the same bytes as float32 (a library reduction);
beside the shipped launch over the real weights of that shape and bf16 cuBLAS, and the large copy that
bench_generate.py's roofline divides by (bytes read + written a second) and a 1 GB read by `_read_kernel`.
What a batch-1 step would take with every product at its read floor is then arithmetic on these (summary.py).

    python benchmarks/results/dp4a_rows_2026-11-29/stream_floor.py --output stream_floor.jsonl   # one GPU
"""
import argparse
import itertools
import math
import os
import sys

import torch
import triton
import triton.language as tl

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.dirname(BENCHMARKS), BENCHMARKS]

from bench_generate import copy_bandwidth  # noqa: E402
from bench_records import append_record  # noqa: E402
from profile_decode import replay_seconds  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel, packed_weight  # noqa: E402

SHAPES = {"q|k|v": (12288, 4096), "o": (4096, 4096), "gate|up": (22016, 4096), "down": (4096, 11008)}
READ_CONFIGS = [(block, steps, warps) for block, steps, warps in
                itertools.product((256, 512, 1024, 2048), (1, 2, 4, 8, 16), (4, 8))
                if block // (32 * warps) >= 2]  # at least one 128-bit load a thread a step


@triton.jit
def _read_kernel(words_ptr, out_ptr, words, BLOCK: tl.constexpr, STEPS: tl.constexpr):
    """out[program] = the sum of its BLOCK x STEPS int64 words (contiguous), read BLOCK a step."""
    start = tl.program_id(0).to(tl.int64) * BLOCK * STEPS
    total = tl.zeros((BLOCK,), dtype=tl.int64)
    for step in range(STEPS):
        where = start + step * BLOCK + tl.arange(0, BLOCK)
        total += tl.load(words_ptr + where, mask=where < words, other=0, eviction_policy="evict_first")
    tl.store(out_ptr + tl.program_id(0), tl.sum(total))


def read(buffer: torch.Tensor, config: tuple) -> torch.Tensor:
    block, steps, warps = config
    programs = triton.cdiv(buffer.numel(), block * steps)
    out = torch.empty(programs, dtype=torch.int64, device=buffer.device)
    _read_kernel[(programs,)](buffer, out, buffer.numel(), block, steps, num_warps=warps)
    return out


def stored_bytes(kind: str, n: int, k: int) -> int:
    return {"int4": n * k // 2 + 2 * 2 * n * k // 64, "int8": n * k + 2 * n, "bf16": 2 * n * k}[kind]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="stream_floor.jsonl")
    args = parser.parse_args()
    append_record(args.output, dict(way="large copy", bytes_read_and_written_TBps=copy_bandwidth() / 1e12))
    big = torch.zeros(2**30 // 8, dtype=torch.int64, device="cuda")
    best_big = min((replay_seconds(lambda: read(big, config)), config) for config in READ_CONFIGS)
    append_record(args.output, dict(way="1 GB read", config=best_big[1], TBps=2**30 / best_big[0] / 1e12))
    for kind, (shape, (n, k)) in itertools.product(("int4", "int8", "bf16"), SHAPES.items()):
        size = stored_bytes(kind, n, k)
        copies = max(6, math.ceil(200e6 / size))
        buffers = [torch.zeros(size // 8, dtype=torch.int64, device="cuda") for _ in range(copies)]
        record = dict(kind=kind, shape=shape, bytes=size)
        timings = [(replay_seconds(lambda: [read(b, config) for b in buffers]) / copies, config)
                   for config in READ_CONFIGS]
        seconds, config = min(timings)
        append_record(args.output, dict(record, way="read kernel, fastest", config=config, us=seconds * 1e6))
        append_record(args.output, dict(record, way="torch.sum", us=replay_seconds(
            lambda: [b.view(torch.float32).sum() for b in buffers]) / copies * 1e6))
        bf16 = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for _ in range(max(3, copies // 4))]
        x = torch.randn(1, k, device="cuda", dtype=torch.bfloat16)
        if kind == "bf16":
            append_record(args.output, dict(record, way="bf16 cuBLAS", us=replay_seconds(
                lambda: [x @ w.t() for w in bf16]) / len(bf16) * 1e6))
        else:
            packed = [packed_weight(bf16[i % len(bf16)] + i, 4 if kind == "int4" else 8) for i in range(copies)]
            append_record(args.output, dict(record, way="shipped", us=replay_seconds(
                lambda: [launch_quantized_kernel(x, [w]) for w in packed]) / copies * 1e6))


if __name__ == "__main__":
    with torch.no_grad():
        main()
