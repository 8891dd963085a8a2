"""int8 prompts on the int8 tensor cores in one Triton launch (2026-11-29, twenty-fifth session).

The first call of this session ran `../int8_limbs_2026-11-29/limbs.py`: the input cut into three exact int8 limbs and
multiplied by cuBLASLt's int8 matmul (`torch._int_mm`) is exact but slower than the shipped launch everywhere (q|k|v at
96 rows 60.1 us compiled against 42.6; bf16 cuBLAS 28.7), partly because its int32 sums (3 x rows x outputs) go to
memory and back. Here one kernel does it: each program loads a tile of codes as they are stored (int8, no conversion,
so Triton's pipeline copies them straight into the tensor cores' shared operand), meets the three limbs of its rows in
three int8 dots with int32 accumulators, and joins them in float32 in its epilogue, times the row's power of two and
the output's scale, written in the input's dtype: the same numbers as `limb_product`, without the int32 round trip.

Timed, microseconds a product (copies of the 7B shapes' weights, >= 200 MB, replayed from a CUDA graph): a sweep of
tiles (x @ w.T or weights first; rows x outputs x inputs a step, stages, warps), against the shipped autotuned int8
launch and bf16 cuBLAS; the split (compiled, as the decoder would fuse it into the norm before) timed alone beside.

    python benchmarks/results/int8_limb_kernel_2026-11-29/limb_kernel.py check    # CPU, Triton's interpreter
    python benchmarks/results/int8_limb_kernel_2026-11-29/limb_kernel.py --output limb_kernel.jsonl    # one GPU
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
sys.path[:0] = [os.path.dirname(BENCHMARKS), BENCHMARKS, os.path.join(os.path.dirname(HERE), "int8_limbs_2026-11-29")]

from limbs import SHAPES, limb_product, split_limbs  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel, packed_weight, reference_product  # noqa: E402

LIMBS = 3
# (weights first, BLOCK_M rows, BLOCK_N outputs, BLOCK_K inputs a step, stages, warps): three int32 accumulators of
# BLOCK_M x BLOCK_N take 3 * BLOCK_M * BLOCK_N / (32 * warps) registers a thread, 96 at most here.
TILES = [(first, m, n, k, stages, 4 if m * n <= 4096 else 8)
         for first, m, n, k, stages in itertools.product((False, True), (32, 64, 128), (64, 128), (128, 256), (3, 4))
         if m * n <= 8192 and (first or m > 32)]


@triton.jit
def limb_kernel(limbs_ptr, power_ptr, q_ptr, s_ptr, out_ptr, M, N, K: tl.constexpr, BLOCK_M: tl.constexpr,
                BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, WEIGHTS_FIRST: tl.constexpr):
    """out[m, n] = power[m] * scale[n] * sum_i 256^i * (limb_i[m] . code[n]): limbs (3, M, K) int8, lowest first;
    codes (N, K) int8; each limb's dot exact in int32, joined in float32 as limbs.limb_sums joins them."""
    n = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    inside = m < M
    shape: tl.constexpr = (BLOCK_N, BLOCK_M) if WEIGHTS_FIRST else (BLOCK_M, BLOCK_N)
    low = tl.zeros(shape, dtype=tl.int32)
    middle = tl.zeros(shape, dtype=tl.int32)
    high = tl.zeros(shape, dtype=tl.int32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        if WEIGHTS_FIRST:
            codes = tl.load(q_ptr + n[:, None] * K + k[None, :])  # (BLOCK_N, BLOCK_K)
            limb = limbs_ptr + m[None, :] * K + k[:, None]  # (BLOCK_K, BLOCK_M)
            low = tl.dot(codes, tl.load(limb, mask=inside[None, :], other=0), low, out_dtype=tl.int32)
            middle = tl.dot(codes, tl.load(limb + M * K, mask=inside[None, :], other=0), middle, out_dtype=tl.int32)
            high = tl.dot(codes, tl.load(limb + 2 * M * K, mask=inside[None, :], other=0), high, out_dtype=tl.int32)
        else:
            codes = tl.load(q_ptr + n[None, :] * K + k[:, None])  # (BLOCK_K, BLOCK_N)
            limb = limbs_ptr + m[:, None] * K + k[None, :]  # (BLOCK_M, BLOCK_K)
            low = tl.dot(tl.load(limb, mask=inside[:, None], other=0), codes, low, out_dtype=tl.int32)
            middle = tl.dot(tl.load(limb + M * K, mask=inside[:, None], other=0), codes, middle, out_dtype=tl.int32)
            high = tl.dot(tl.load(limb + 2 * M * K, mask=inside[:, None], other=0), codes, high, out_dtype=tl.int32)
    total = (high.to(tl.float32) * 256 + middle.to(tl.float32)) * 256 + low.to(tl.float32)
    power = tl.load(power_ptr + m, mask=inside, other=0)
    scale = tl.load(s_ptr + n).to(tl.float32)
    dtype = out_ptr.dtype.element_ty
    if WEIGHTS_FIRST:
        tl.store(out_ptr + m[None, :] * N + n[:, None], (total * power[None, :] * scale[:, None]).to(dtype),
                 mask=inside[None, :])
    else:
        tl.store(out_ptr + m[:, None] * N + n[None, :], (total * power[:, None] * scale[None, :]).to(dtype),
                 mask=inside[:, None])


def limb_kernel_product(x: torch.Tensor, weight, tile: tuple, limbs: tuple | None = None) -> torch.Tensor:
    """x (M, K) @ dequantized(int8 weight).T by `limb_kernel` with `tile`; `limbs`: x already split."""
    weights_first, block_m, block_n, block_k, stages, warps = tile
    rows, inputs = x.shape
    stacked, power = split_limbs(x, LIMBS) if limbs is None else limbs
    outputs = weight.qweight.shape[0]
    assert outputs % block_n == 0 and inputs % block_k == 0, (outputs, inputs, tile)
    out = x.new_empty(rows, outputs)
    limb_kernel[(outputs // block_n, triton.cdiv(rows, block_m))](
        stacked, power, weight.qweight, weight.scale, out, rows, outputs, inputs, block_m, block_n, block_k,
        weights_first, num_stages=stages, num_warps=warps)
    return out


def check() -> None:
    """Under Triton's interpreter: the kernel equals limbs.limb_product (the same float32 joins), both orientations,
    rows that fill part of a tile, outliers and a row of zeros. In float16: the interpreter rounds bf16 toward zero."""
    torch.manual_seed(0)
    weight = packed_weight(torch.randn(128, 256, dtype=torch.bfloat16) / 16, 8)
    x = torch.randn(40, 256)
    x[:, :4] *= 100
    x[-1] = 0
    x = x.half()
    expected = limb_product(x, weight, LIMBS)
    reference = reference_product(x.double(), [weight._replace(scale=weight.scale.double())])
    for tile in ((False, 32, 64, 64, 3, 4), (True, 16, 64, 128, 3, 4), (False, 64, 128, 256, 3, 4)):
        ours = limb_kernel_product(x, weight, tile)
        print(tile, "equal to limb_product:", bool(torch.equal(ours, expected)),
              f"relative error {float((ours.double() - reference).norm() / reference.norm()):.3e}")


def main() -> None:
    from bench_records import append_record
    from profile_decode import replay_seconds
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="limb_kernel.jsonl")
    parser.add_argument("--rows", default="32,96,256")
    args = parser.parse_args()
    split = torch.compile(lambda x: split_limbs(x, LIMBS))
    for shape, (n, k) in SHAPES.items():
        copies = max(4, math.ceil(200e6 / (n * k)))
        bf16 = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5 for _ in range(copies)]
        packed = [packed_weight(w, 8) for w in bf16]
        for rows in map(int, args.rows.split(",")):
            x = torch.randn(rows, k, device="cuda")
            x[:, :4] *= 100
            x = x.bfloat16()
            reference = reference_product(x.double(), [packed[0]._replace(scale=packed[0].scale.double())])
            limbs = split(x)
            record = dict(shape=shape, rows=rows)
            append_record(args.output, dict(record, way="shipped",
                                            us=replay_seconds(lambda: [launch_quantized_kernel(x, [w]) for w in packed])
                                            / copies * 1e6))
            append_record(args.output, dict(record, way="bf16 cuBLAS",
                                            us=replay_seconds(lambda: [x @ w.t() for w in bf16]) / copies * 1e6))
            append_record(args.output, dict(record, way="split, compiled",
                                            us=replay_seconds(lambda: [split(x) for _ in packed]) / copies * 1e6))
            for tile in TILES:
                if tile[1] > 2 * max(rows, 32) or (tile[1] < 64 and rows > 64):
                    continue
                try:
                    out = limb_kernel_product(x, packed[0], tile, limbs)
                    error = float((out.double() - reference).norm() / reference.norm())
                    seconds = replay_seconds(lambda: [limb_kernel_product(x, w, tile, limbs) for w in packed])
                except Exception as exception:  # noqa: BLE001 - a tile that does not compile or fit is recorded
                    error = f"{type(exception).__name__}: {exception}"[-300:]
                    append_record(args.output, dict(record, way=tile, error=error))
                    continue
                append_record(args.output, dict(record, way=tile, us=seconds / copies * 1e6, relative_error=error))


if __name__ == "__main__":
    with torch.no_grad():
        check() if sys.argv[1:] == ["check"] else main()
