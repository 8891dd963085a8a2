"""Prototype (2026-11-28, fifteenth session): the shipped one-row int4 kernel with each word's eight products done in
bf16 pairs (`fma.rn.bf16x2`: two weights per instruction) by inline PTX, the bf16 input used as loaded.

Why: Nsight Compute on an H200 (ncu_one_row_qkv_h200.csv) puts the shipped one-row int4 q|k|v launch at 77% of its
issue slots with "not selected" and "math pipe throttle" its main stalls, DRAM 24%: bound by instructions, 8.2 per
weight (12.96 M warp instructions for 50.3 M weights). Per word of 8 codes the float32 loop issues a shift, an and-or
and a multiply-add per code, an add per input for the group's input sum and a conversion per input (each thread holds
one row, so none of it is shared). Here a word takes 4 shifts and and-ors that place two codes in a bf16 pair as
128 + code (`lop3` with 0x43004300), 4 pair subtractions of 128 (exact), 4 packs of the matching inputs, 4 pair
multiply-adds, 3 pair adds for the inputs' sum and two pair-to-float32 sums: about 28 instructions for 8 weights.

Rounding: the 8 products and the 8 inputs' sums are each summed in bf16 (8 bits of mantissa) before float32 takes over
per word; the script reports the error against dequantize-then-matmul beside the shipped kernel's.
    python benchmarks/results/quantized_decoding_2026-11-28b/next_packed.py
"""
import itertools
import json
import os
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from quantized_decode_kernels import _group_scales, launch_quantized_kernel, reference_product  # noqa: E402

# $0, $1: the word's sum of code x input and sum of inputs (float32); $2: the word; $3..$10: the inputs of planes 0..7
WORD_DOT_ASM = tl.constexpr("""
{
.reg .b32 t1, t2, t3, f0, f1, f2, f3, p0, p1, p2, p3, acc, sum, m;
mov.b32 m, 0x43004300;
.reg .b16 lo, hi;
.reg .f32 a, b;
shr.u32 t1, $2, 4;
shr.u32 t2, $2, 8;
shr.u32 t3, $2, 12;
lop3.b32 f0, $2, 0x000F000F, 0x43004300, 0xEA;
lop3.b32 f1, t1, 0x000F000F, 0x43004300, 0xEA;
lop3.b32 f2, t2, 0x000F000F, 0x43004300, 0xEA;
lop3.b32 f3, t3, 0x000F000F, 0x43004300, 0xEA;
sub.rn.bf16x2 f0, f0, m;
sub.rn.bf16x2 f1, f1, m;
sub.rn.bf16x2 f2, f2, m;
sub.rn.bf16x2 f3, f3, m;
mov.b32 p0, {$3, $7};
mov.b32 p1, {$4, $8};
mov.b32 p2, {$5, $9};
mov.b32 p3, {$6, $10};
mul.rn.bf16x2 acc, f0, p0;
fma.rn.bf16x2 acc, f1, p1, acc;
fma.rn.bf16x2 acc, f2, p2, acc;
fma.rn.bf16x2 acc, f3, p3, acc;
add.rn.bf16x2 sum, p0, p1;
add.rn.bf16x2 sum, sum, p2;
add.rn.bf16x2 sum, sum, p3;
mov.b32 {lo, hi}, acc;
cvt.f32.bf16 a, lo;
cvt.f32.bf16 b, hi;
add.f32 $0, a, b;
mov.b32 {lo, hi}, sum;
cvt.f32.bf16 a, lo;
cvt.f32.bf16 b, hi;
add.f32 $1, a, b;
}
""")

# MODE 1: $0: the word's sum of weight x input (float32); $1: the word; $2..$9: the inputs of planes 0..7; $10, $11:
# the group's scale and offset. Codes become bf16 weights in pairs (code * scale + offset, one rounding: the bf16
# weight dequantize() gives), then the pair products; no input sums.
WORD_DEQUANT_DOT_ASM = tl.constexpr("""
{
.reg .b32 t1, t2, t3, f0, f1, f2, f3, p0, p1, p2, p3, acc, m, s2, o2;
.reg .b16 lo, hi;
.reg .f32 a, b;
mov.b32 m, 0x43004300;
mov.b32 s2, {$10, $10};
mov.b32 o2, {$11, $11};
shr.u32 t1, $1, 4;
shr.u32 t2, $1, 8;
shr.u32 t3, $1, 12;
lop3.b32 f0, $1, 0x000F000F, 0x43004300, 0xEA;
lop3.b32 f1, t1, 0x000F000F, 0x43004300, 0xEA;
lop3.b32 f2, t2, 0x000F000F, 0x43004300, 0xEA;
lop3.b32 f3, t3, 0x000F000F, 0x43004300, 0xEA;
sub.rn.bf16x2 f0, f0, m;
sub.rn.bf16x2 f1, f1, m;
sub.rn.bf16x2 f2, f2, m;
sub.rn.bf16x2 f3, f3, m;
fma.rn.bf16x2 f0, f0, s2, o2;
fma.rn.bf16x2 f1, f1, s2, o2;
fma.rn.bf16x2 f2, f2, s2, o2;
fma.rn.bf16x2 f3, f3, s2, o2;
mov.b32 p0, {$2, $6};
mov.b32 p1, {$3, $7};
mov.b32 p2, {$4, $8};
mov.b32 p3, {$5, $9};
mul.rn.bf16x2 acc, f0, p0;
fma.rn.bf16x2 acc, f1, p1, acc;
fma.rn.bf16x2 acc, f2, p2, acc;
fma.rn.bf16x2 acc, f3, p3, acc;
mov.b32 {lo, hi}, acc;
cvt.f32.bf16 a, lo;
cvt.f32.bf16 b, hi;
add.f32 $0, a, b;
}
""")


@triton.jit
def _word_dequant_dots(packed, x0, x1, x2, x3, x4, x5, x6, x7, scale, offset):
    """Per int32 word of 8 int4 codes: sum((code * scale + offset) x input), float32, from bf16 pairs."""
    return tl.inline_asm_elementwise(
        WORD_DEQUANT_DOT_ASM, "=r,r,h,h,h,h,h,h,h,h,h,h",
        [packed, x0, x1, x2, x3, x4, x5, x6, x7, scale, offset], dtype=tl.float32, is_pure=True, pack=1)


@triton.jit
def _word_dots(packed, x0, x1, x2, x3, x4, x5, x6, x7):
    """Per int32 word of 8 int4 codes (planes 0..7): sum(code x input) and sum(input), float32, from bf16 pairs."""
    return tl.inline_asm_elementwise(
        WORD_DOT_ASM, "=r,=r,r,h,h,h,h,h,h,h,h",
        [packed, x0, x1, x2, x3, x4, x5, x6, x7], dtype=(tl.float32, tl.float32), is_pure=True, pack=1)


@triton.jit
def int4_rows_packed_kernel(x_ptr, out_ptr, q_ptr, s_ptr, f_ptr, N, K: tl.constexpr, GROUP: tl.constexpr,
                            BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, MODE: tl.constexpr):
    GROUPS: tl.constexpr = K // GROUP
    WORDS: tl.constexpr = GROUP // 8
    STEP_GROUPS: tl.constexpr = BLOCK_K // GROUP
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    words = tl.arange(0, WORDS)
    accumulator = tl.zeros((BLOCK_N, STEP_GROUPS, WORDS), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        groups = k0 // GROUP + tl.arange(0, STEP_GROUPS)
        inside = groups < GROUPS
        word = groups[None, :, None] * WORDS + words[None, None, :]
        packed = tl.load(q_ptr + rows[:, None, None] * (K // 8) + word, mask=inside[None, :, None], other=0,
                         eviction_policy="evict_first")
        x_at = x_ptr.to(tl.pointer_type(tl.uint16)) + groups[None, :, None] * GROUP + words[None, None, :]
        where = inside[None, :, None]
        x0 = tl.load(x_at, mask=where, other=0)
        x1 = tl.load(x_at + WORDS, mask=where, other=0)
        x2 = tl.load(x_at + 2 * WORDS, mask=where, other=0)
        x3 = tl.load(x_at + 3 * WORDS, mask=where, other=0)
        x4 = tl.load(x_at + 4 * WORDS, mask=where, other=0)
        x5 = tl.load(x_at + 5 * WORDS, mask=where, other=0)
        x6 = tl.load(x_at + 6 * WORDS, mask=where, other=0)
        x7 = tl.load(x_at + 7 * WORDS, mask=where, other=0)
        if MODE == 0:
            scale, offset = _group_scales(s_ptr, f_ptr, rows, N, groups, inside, False)
            dots, sums = _word_dots(packed, x0, x1, x2, x3, x4, x5, x6, x7)
            accumulator += dots * scale[:, :, None] + sums * offset[:, :, None]
        else:
            at = groups[None, :] * N + rows[:, None]
            scale = tl.load(s_ptr.to(tl.pointer_type(tl.uint16)) + at, mask=inside[None, :], other=0)
            offset = tl.load(f_ptr.to(tl.pointer_type(tl.uint16)) + at, mask=inside[None, :], other=0)
            accumulator += _word_dequant_dots(packed, x0, x1, x2, x3, x4, x5, x6, x7, scale[:, :, None],
                                              offset[:, :, None])
    tl.store(out_ptr + rows, tl.sum(tl.sum(accumulator, axis=2), axis=1).to(out_ptr.dtype.element_ty))


def packed_product(x: torch.Tensor, qweight: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor,
                   config: dict) -> torch.Tensor:
    """x (1, K) bf16 @ dequantized(one stacked int4 weight).T."""
    N, K = qweight.shape[0], x.shape[1]
    out = x.new_empty(1, N)
    int4_rows_packed_kernel[(N // config["BLOCK_N"],)](
        x, out, qweight, scale, offset, N, K=K, GROUP=K // scale.shape[0], BLOCK_N=config["BLOCK_N"],
        BLOCK_K=config["BLOCK_K"], MODE=config["MODE"], num_warps=config["num_warps"])
    return out


def main() -> None:
    from profile_decode import replay_seconds, rotated_quantized_weights
    output = os.path.join(os.environ.get("OUT", "/tmp"), "kernels_packed_modes.jsonl")
    shapes = {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
    configs = [{"BLOCK_N": n, "BLOCK_K": k, "num_warps": w, "MODE": mode}
               for mode, n, k, w in itertools.product((1, 0), (4, 8, 16), (512, 1024, 2048), (2, 4, 8))]
    with open(output, "w") as out, torch.no_grad():
        for shape, parts in shapes.items():
            sets, nbytes = rotated_quantized_weights(4, parts)
            stacked = [(torch.cat([w.qweight for w in s]), torch.cat([w.scale for w in s], 1).contiguous(),
                        torch.cat([w.offset for w in s], 1).contiguous()) for s in sets]
            x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
            reference = reference_product(x, sets[0]).float()
            shipped_error = float((launch_quantized_kernel(x, sets[0]).float() - reference).abs().max()
                                  / reference.abs().max())
            seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w) for w in sets])
            results = [dict(shape=shape, config="shipped (autotuned)", TBps=nbytes / seconds / 1e12,
                            error=shipped_error)]
            for config in configs:
                if (config["BLOCK_K"] // 64) * config["BLOCK_N"] * 8 < 32 * config["num_warps"]:
                    continue  # fewer words a step than threads
                try:
                    error = float((packed_product(x, *stacked[0], config).float() - reference).abs().max()
                                  / reference.abs().max())
                    seconds = replay_seconds(lambda: [packed_product(x, *w, config) for w in stacked])
                except Exception as failure:
                    print(shape, config, "error", str(failure)[:300], flush=True)
                    continue
                results.append(dict(shape=shape, config=config, TBps=nbytes / seconds / 1e12, error=error))
            for record in results:
                print(json.dumps(record), file=out, flush=True)
            ranked = sorted(results, key=lambda r: -r["TBps"])
            print(shape, "shipped", round(results[0]["TBps"], 3), "error", round(shipped_error, 5), "best",
                  [(r["config"] if isinstance(r["config"], str) else tuple(r["config"].values()), round(r["TBps"], 3),
                    round(r["error"], 5)) for r in ranked[:5]], flush=True)


if __name__ == "__main__":
    main()
