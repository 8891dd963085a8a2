"""Prototype (2026-11-28, fifteenth session): one-row int4 and int8 kernels over weights stored input-major, codes
(K / 8, N) int32 for int4 and (K, N) int8 for int8, so that a warp's lanes span output columns instead of inputs.

Why: Nsight Compute put the shipped one-row int4 kernel at 89% of L1 throughput. There each warp holds one weight row,
its lanes span the inputs, and every plane's input load touches one 128-byte line per int4 group in the step (16 at
1,024 inputs a step) while the same input is loaded again by every row's warp. With lanes along the outputs, an input
value is one broadcast address for the whole warp (one wavefront), the weights are read 128 contiguous bytes a warp
(rows of the stored matrix are input words), and the sums over inputs stay in each thread until the end.

Each configuration is checked against dequantize-then-matmul, then timed against the shipped autotuned launch on the
same weights: 7B shapes, 6 copies rotated (L2 cannot serve them), CUDA-graph replays, TB/s of codes, scales and offsets.
SPLIT > 1 splits the inputs across programs that add into a zeroed float32 output (the zeroing and the cast back to
bf16 are timed with it), for down's 4,096 outputs, which leave SMs idle at one program per block of columns.
    python benchmarks/results/quantized_decoding_2026-11-28b/next_word_major.py [--quick]
"""
import argparse
import itertools
import json
import os
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from quantized_decode_kernels import PackedWeight, _int4_bit_cast_scales, _int4_codes, _int8_to_float  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel, reference_product  # noqa: E402


@triton.jit
def int4_columns_kernel(x_ptr, out_ptr, q_ptr, s_ptr, f_ptr, N, K: tl.constexpr, GROUP: tl.constexpr,
                        BLOCK_N: tl.constexpr, STEP_GROUPS: tl.constexpr, SPLIT: tl.constexpr,
                        BIT_CAST: tl.constexpr):
    WORDS: tl.constexpr = GROUP // 8
    GROUPS: tl.constexpr = K // GROUP
    PER_SPLIT: tl.constexpr = (GROUPS + SPLIT - 1) // SPLIT
    columns = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    first_group = tl.program_id(1) * PER_SPLIT
    words = tl.arange(0, WORDS)
    accumulator = tl.zeros((STEP_GROUPS, WORDS, BLOCK_N), dtype=tl.float32)
    for g0 in range(0, PER_SPLIT, STEP_GROUPS):
        step = g0 + tl.arange(0, STEP_GROUPS)
        groups = first_group + step
        inside = (groups < GROUPS) & (step < PER_SPLIT)
        word_rows = groups[:, None, None] * WORDS + words[None, :, None]
        packed = tl.load(q_ptr + word_rows * N + columns[None, None, :], mask=inside[:, None, None], other=0,
                         eviction_policy="evict_first")
        where = groups[:, None] * N + columns[None, :]
        scale = tl.load(s_ptr + where, mask=inside[:, None], other=0).to(tl.float32)
        offset = tl.load(f_ptr + where, mask=inside[:, None], other=0).to(tl.float32)
        scale, offset = _int4_bit_cast_scales(scale, offset, BIT_CAST)
        first_input = groups[:, None, None] * GROUP + words[None, :, None]
        products = tl.zeros((STEP_GROUPS, WORDS, BLOCK_N), dtype=tl.float32)
        inputs = tl.zeros((STEP_GROUPS, WORDS, 1), dtype=tl.float32)
        for plane in tl.static_range(8):
            x = tl.load(x_ptr + first_input + plane * WORDS, mask=inside[:, None, None], other=0).to(tl.float32)
            products += _int4_codes(packed, plane, BIT_CAST) * x
            inputs += x
        accumulator += products * scale[:, None, :] + inputs * offset[:, None, :]
    result = tl.sum(tl.sum(accumulator, axis=1), axis=0)
    if SPLIT == 1:
        tl.store(out_ptr + columns, result.to(out_ptr.dtype.element_ty))
    else:
        tl.atomic_add(out_ptr + columns, result)


@triton.jit
def int8_columns_kernel(x_ptr, out_ptr, q_ptr, s_ptr, N, K: tl.constexpr, BLOCK_N: tl.constexpr,
                        BLOCK_K: tl.constexpr, SPLIT: tl.constexpr, BIT_CAST: tl.constexpr):
    PER_SPLIT: tl.constexpr = (K + SPLIT - 1) // SPLIT
    columns = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    first = tl.program_id(1) * PER_SPLIT
    accumulator = tl.zeros((BLOCK_K, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, PER_SPLIT, BLOCK_K):
        step = k0 + tl.arange(0, BLOCK_K)
        inputs = first + step
        inside = (inputs < K) & (step < PER_SPLIT)
        codes = tl.load(q_ptr + inputs[:, None] * N + columns[None, :], mask=inside[:, None], other=0,
                        eviction_policy="evict_first")
        x = tl.load(x_ptr + inputs, mask=inside, other=0).to(tl.float32)
        accumulator += _int8_to_float(codes, BIT_CAST) * x[:, None]
    result = tl.sum(accumulator, axis=0) * tl.load(s_ptr + columns).to(tl.float32)
    if SPLIT == 1:
        tl.store(out_ptr + columns, result.to(out_ptr.dtype.element_ty))
    else:
        tl.atomic_add(out_ptr + columns, result)


def input_major(weights: list[PackedWeight]) -> PackedWeight:
    """The stacked weights as one input-major weight: codes (K / 8 or K, N) and scales/offsets (groups, N)."""
    qweight = torch.cat([w.qweight for w in weights], dim=0).T.contiguous()
    scale = torch.cat([w.scale for w in weights], dim=1).contiguous()
    offset = torch.cat([w.offset for w in weights], dim=1).contiguous() if weights[0].offset is not None else None
    return PackedWeight(qweight, scale, offset)


def columns_product(x: torch.Tensor, weight: PackedWeight, config: dict) -> torch.Tensor:
    """x (1, K) @ dequantized(weight).T through the input-major kernels."""
    bits = 4 if weight.qweight.dtype == torch.int32 else 8
    K, N = x.shape[1], weight.qweight.shape[1]
    split = config["SPLIT"]
    out = torch.zeros(1, N, device=x.device, dtype=torch.float32) if split > 1 else x.new_empty(1, N)
    grid = (N // config["BLOCK_N"], split)
    if bits == 4:
        int4_columns_kernel[grid](x, out, weight.qweight, weight.scale, weight.offset, N, K=K,
                                  GROUP=K // weight.scale.shape[0], BLOCK_N=config["BLOCK_N"],
                                  STEP_GROUPS=config["STEP"], SPLIT=split, BIT_CAST=config["BIT_CAST"],
                                  num_warps=config["num_warps"])
    else:
        int8_columns_kernel[grid](x, out, weight.qweight, weight.scale, N, K=K, BLOCK_N=config["BLOCK_N"],
                                  BLOCK_K=config["STEP"], SPLIT=split, BIT_CAST=config["BIT_CAST"],
                                  num_warps=config["num_warps"])
    return out.to(x.dtype) if split > 1 else out


def configs(bits: int, quick: bool) -> list[dict]:
    if bits == 4:
        grid = itertools.product((16, 32, 64, 128), (1, 2, 4), (2, 4, 8), (1,))
        extra = itertools.product((32, 64, 128), (1, 2), (4, 8), (2, 4))
    else:
        grid = itertools.product((64, 128, 256), (16, 32, 64), (2, 4, 8), (1,))
        extra = itertools.product((128, 256), (32, 64), (4, 8), (2, 4))
    found = [{"BLOCK_N": n, "STEP": step, "num_warps": warps, "SPLIT": split, "BIT_CAST": False}
             for n, step, warps, split in itertools.chain(grid, extra)]
    return found[:3] if quick else found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="three configurations a kind (a smoke run)")
    parser.add_argument("--output", default=os.path.join(os.environ.get("OUT", "/tmp"), "kernels_word_major.jsonl"))
    arguments = parser.parse_args()
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    from profile_decode import replay_seconds, rotated_quantized_weights
    shapes = {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
    with open(arguments.output, "w") as out, torch.no_grad():
        for bits in (4, 8):
            for shape, parts in shapes.items():
                sets, nbytes = rotated_quantized_weights(bits, parts)
                transposed = [input_major(weights) for weights in sets]
                x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
                reference = reference_product(x, sets[0]).float()
                seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w) for w in sets])
                results = [dict(bits=bits, shape=shape, config="shipped (autotuned)", TBps=nbytes / seconds / 1e12)]
                candidates = configs(bits, arguments.quick)
                for config in candidates:
                    try:
                        error = (columns_product(x, transposed[0], config).float() - reference).abs().max()
                        seconds = replay_seconds(lambda: [columns_product(x, w, config) for w in transposed])
                    except Exception as failure:  # out of registers or shared memory
                        print(bits, shape, config, "error", str(failure)[:160], flush=True)
                        continue
                    assert error <= 0.02 * reference.abs().max(), (bits, shape, config, float(error))
                    results.append(dict(bits=bits, shape=shape, config=config, TBps=nbytes / seconds / 1e12))
                best = sorted(results[1:], key=lambda r: -r["TBps"])[:3]
                for config in [{**r["config"], "BIT_CAST": True} for r in best]:  # the conversion by bit tricks
                    seconds = replay_seconds(lambda: [columns_product(x, w, config) for w in transposed])
                    results.append(dict(bits=bits, shape=shape, config=config, TBps=nbytes / seconds / 1e12))
                for record in results:
                    print(json.dumps(record), file=out, flush=True)
                ranked = sorted(results, key=lambda r: -r["TBps"])
                print(bits, shape, "shipped", round(results[0]["TBps"], 3), "best",
                      [(r["config"] if isinstance(r["config"], str) else tuple(r["config"].values()),
                        round(r["TBps"], 3)) for r in ranked[:4]], flush=True)


if __name__ == "__main__":
    main()
