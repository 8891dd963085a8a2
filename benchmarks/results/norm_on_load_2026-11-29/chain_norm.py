"""The RMSNorm moved from the last program of o and down into the programs of the next product (2026-11-29,
twenty-eighth session; on an H200 no faster than the shipped way, README.md): a batch-1 layer of one-row dp4a
products, the shipped way against this one, over weight copies L2 cannot hold, replayed from one CUDA graph.

Shipped (quantized_row_kernel.py): o and down write their outputs, and the last of their programs to finish adds the
residual and normalises the whole hidden vector (norm_tail_2026-11-29: that tail costs int8 4.5 us a layer, int4 1.8,
against plain products). Here:
- o and down (`residual_row_kernel`): each program adds the residual to its own outputs and writes those of the new
  hidden vector; no program waits for the others;
- q|k|v and gate|up (`normed_row_kernel`): each program first reads the whole hidden vector (4096 values, 8 KB from
  L2) for its sum of squares, then normalises each input chunk as it loads it, before cutting it into limbs
  (`normalize_asm`: bf16(g x bf16(h x r)), r = rsqrt(mean(h^2) + eps), rounded as the decoder's RMSNorm rounds).
The norm's work is then spread over every program of the next launch instead of one program at the end of the last.
Timed (us a layer, int8 and int4, each product's tile chosen by the shipped autotune among ROW_TILES): shipped, this
way, and plain products (the bound). Checked: two layers' hidden vectors both ways (relative difference; only the
sum of squares' order differs).

    python benchmarks/results/norm_on_load_2026-11-29/chain_norm.py --output chain_norm.jsonl   # one GPU, sm_80+
"""
import argparse
import os
import sys

import torch
from triton.experimental import gluon
from triton.experimental.gluon import language as ttgl

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.dirname(BENCHMARKS), BENCHMARKS, os.path.join(BENCHMARKS, "results", "norm_tail_2026-11-29")]

import quantized_decode_kernels as kernels  # noqa: E402
import quantized_row_kernel as rows_module  # noqa: E402
from bench_records import append_record  # noqa: E402
from chain import HIDDEN, layer_copies  # noqa: E402  (norm_tail_2026-11-29: the same layer's weight copies)

EPS = 1e-5


def normalize_asm(words: int) -> str:
    """PTX: `words` int64s of bf16 inputs h, then as many of the norm's weights g, then r (float32) -> `words`
    int64s of bf16(g x bf16(h x r)). cvt.rn.bf16x2.f32 d, a, b puts a in the high half and b in the low."""
    lines = []
    for word in range(words):
        lines += [f"mov.b64 {{h0, h1}}, ${words + word};", f"mov.b64 {{g0, g1}}, ${2 * words + word};"]
        for half in range(2):
            lines += [f"shl.b32 lo, h{half}, 16;", f"and.b32 hi, h{half}, 0xFFFF0000;",
                      f"mul.rn.f32 lo, lo, ${3 * words};", f"mul.rn.f32 hi, hi, ${3 * words};",
                      "cvt.rn.bf16x2.f32 n, hi, lo;",
                      "shl.b32 lo, n, 16;", "and.b32 hi, n, 0xFFFF0000;",
                      f"shl.b32 glo, g{half}, 16;", f"and.b32 ghi, g{half}, 0xFFFF0000;",
                      "mul.rn.f32 lo, lo, glo;", "mul.rn.f32 hi, hi, ghi;",
                      f"cvt.rn.bf16x2.f32 o{half}, hi, lo;"]
        lines.append(f"mov.b64 ${word}, {{o0, o1}};")
    return "\n".join(["{", ".reg .b32 h0, h1, g0, g1, lo, hi, n, glo, ghi, o0, o1;", *lines, "}"])


@gluon.jit
def _inverse_rms(h_ptr, eps, K: ttgl.constexpr, THREADS: ttgl.constexpr):
    """rsqrt(mean(h^2) + eps) over the whole input, float32."""
    layout: ttgl.constexpr = ttgl.BlockedLayout([K // THREADS], [32], [THREADS // 32], [0])
    h = ttgl.load(h_ptr + ttgl.arange(0, K, layout=layout)).to(ttgl.float32)
    return ttgl.rsqrt(ttgl.sum(h * h, axis=0) / K + eps)


@gluon.jit
def _normed_chunk_limbs(h64, g64, chunk, inside, r, INT4: ttgl.constexpr, LIMBS_ASM: ttgl.constexpr,
                        NORM_ASM: ttgl.constexpr, CHUNK_LAYOUT: ttgl.constexpr):
    """quantized_row_kernel._chunk_limbs over the normalised inputs."""
    ratio = ttgl.zeros(chunk.shape, ttgl.float32, CHUNK_LAYOUT) + r
    if INT4:
        normed = ttgl.inline_asm_elementwise(
            NORM_ASM, "=l,=l,=l,=l,l,l,l,l,l,l,l,l,r",
            [ttgl.load(h64 + 4 * chunk, mask=inside, other=0), ttgl.load(h64 + 4 * chunk + 1, mask=inside, other=0),
             ttgl.load(h64 + 4 * chunk + 2, mask=inside, other=0),
             ttgl.load(h64 + 4 * chunk + 3, mask=inside, other=0),
             ttgl.load(g64 + 4 * chunk, mask=inside, other=0), ttgl.load(g64 + 4 * chunk + 1, mask=inside, other=0),
             ttgl.load(g64 + 4 * chunk + 2, mask=inside, other=0),
             ttgl.load(g64 + 4 * chunk + 3, mask=inside, other=0), ratio],
            dtype=(ttgl.int64, ttgl.int64, ttgl.int64, ttgl.int64), is_pure=True, pack=1)
        made = ttgl.inline_asm_elementwise(
            LIMBS_ASM, "=l,=l,=l,=l,=r,=r,l,l,l,l", [normed[0], normed[1], normed[2], normed[3]],
            dtype=(ttgl.int64, ttgl.int64, ttgl.int64, ttgl.int64, ttgl.float32, ttgl.float32), is_pure=True, pack=1)
        return made[0], made[1], made[2], made[3], made[4], made[5]
    normed = ttgl.inline_asm_elementwise(
        NORM_ASM, "=l,=l,l,l,l,l,r",
        [ttgl.load(h64 + 2 * chunk, mask=inside, other=0), ttgl.load(h64 + 2 * chunk + 1, mask=inside, other=0),
         ttgl.load(g64 + 2 * chunk, mask=inside, other=0), ttgl.load(g64 + 2 * chunk + 1, mask=inside, other=0),
         ratio], dtype=(ttgl.int64, ttgl.int64), is_pure=True, pack=1)
    made = ttgl.inline_asm_elementwise(LIMBS_ASM, "=l,=l,=r,l,l", [normed[0], normed[1]],
                                       dtype=(ttgl.int64, ttgl.int64, ttgl.float32), is_pure=True, pack=1)
    return made[0], made[1], made[0], made[1], made[2], made[2]


@gluon.jit
def _normed_row_dots(h_ptr, g_ptr, r, q_ptr, s_ptr, f_ptr, up_q, up_s, up_f, rows, rows_in_weight,
                     K: ttgl.constexpr, GROUP: ttgl.constexpr, INT4: ttgl.constexpr, LIMBS_ASM: ttgl.constexpr,
                     DOT_ASM: ttgl.constexpr, NORM_ASM: ttgl.constexpr, layout: ttgl.constexpr,
                     CHUNKS: ttgl.constexpr, GATED: ttgl.constexpr):
    """quantized_row_kernel._row_dots over the normalised inputs."""
    KC: ttgl.constexpr = K // 16 if INT4 else K // 8
    h64 = h_ptr.to(ttgl.pointer_type(ttgl.int64))
    g64 = g_ptr.to(ttgl.pointer_type(ttgl.int64))
    accumulator = ttgl.zeros([rows.shape[0], CHUNKS], ttgl.float32, layout)
    up_accumulator = ttgl.zeros([rows.shape[0], CHUNKS], ttgl.float32, layout)
    for k0 in range(0, KC, CHUNKS):
        chunk = k0 + ttgl.arange(0, CHUNKS, layout=ttgl.SliceLayout(0, layout))
        inside = chunk < KC
        limbs = _normed_chunk_limbs(h64, g64, chunk, inside, r, INT4, LIMBS_ASM, NORM_ASM,
                                    ttgl.SliceLayout(0, layout))
        accumulator += rows_module._chunk_terms(q_ptr, s_ptr, f_ptr, rows, rows_in_weight, chunk, inside, limbs, K,
                                                GROUP, INT4, DOT_ASM)
        if GATED:
            up_accumulator += rows_module._chunk_terms(up_q, up_s, up_f, rows, rows_in_weight, chunk, inside, limbs,
                                                       K, GROUP, INT4, DOT_ASM)
    dots = ttgl.sum(accumulator, axis=1)
    up = ttgl.sum(up_accumulator, axis=1)
    if not INT4:
        dots = dots * ttgl.load(s_ptr + rows).to(ttgl.float32)
        if GATED:
            up = up * ttgl.load(up_s + rows).to(ttgl.float32)
    return dots, up


@gluon.jit
def normed_row_kernel(h_ptr, g_ptr, out_ptr, q0, q1, q2, s0, s1, s2, f0, f1, f2, n0, n01, N, eps,
                      K: ttgl.constexpr, GROUP: ttgl.constexpr, INT4: ttgl.constexpr, LIMBS_ASM: ttgl.constexpr,
                      DOT_ASM: ttgl.constexpr, NORM_ASM: ttgl.constexpr, R: ttgl.constexpr, C: ttgl.constexpr,
                      WR: ttgl.constexpr, WC: ttgl.constexpr, GATED: ttgl.constexpr = False):
    """quantized_row_kernel.row_kernel whose input is RMSNorm(h) x g, normalised here."""
    layout: ttgl.constexpr = ttgl.BlockedLayout([R, C], [1, 32], [WR, WC], [1, 0])
    BLOCK_N: ttgl.constexpr = R * WR
    r = _inverse_rms(h_ptr, eps, K, 32 * WR * WC)
    start = ttgl.program_id(0).to(ttgl.int64) * BLOCK_N
    q_ptr, s_ptr, f_ptr, first, rows_in_weight = rows_module.stacked_weight(start, q0, q1, q2, s0, s1, s2, f0, f1, f2,
                                                                            n0, n01, N)
    along_rows: ttgl.constexpr = ttgl.SliceLayout(1, layout)
    rows = first + ttgl.arange(0, BLOCK_N, layout=along_rows)
    columns = start + ttgl.arange(0, BLOCK_N, layout=along_rows)
    dots, up = _normed_row_dots(h_ptr, g_ptr, r, q_ptr, s_ptr, f_ptr, q1, s1, f1, rows, rows_in_weight, K, GROUP,
                                INT4, LIMBS_ASM, DOT_ASM, NORM_ASM, layout, C * 32 * WC, GATED)
    dtype = out_ptr.dtype.element_ty
    if GATED:
        gate = dots.to(dtype).to(ttgl.float32)
        silu = (gate / (1.0 + ttgl.exp(-gate))).to(dtype).to(ttgl.float32)
        ttgl.store(out_ptr + columns, (silu * up.to(dtype).to(ttgl.float32)).to(dtype))
    else:
        ttgl.store(out_ptr + columns, dots.to(dtype))


@gluon.jit
def residual_row_kernel(x_ptr, hidden_ptr, residual_ptr, q_ptr, s_ptr, f_ptr, N, K: ttgl.constexpr,
                        GROUP: ttgl.constexpr, INT4: ttgl.constexpr, LIMBS_ASM: ttgl.constexpr,
                        DOT_ASM: ttgl.constexpr, R: ttgl.constexpr, C: ttgl.constexpr, WR: ttgl.constexpr,
                        WC: ttgl.constexpr):
    """hidden[block] = residual[block] + x @ dequantized(w)[block].T, each program its own outputs (the product
    rounded to hidden's dtype first, as the decoder's add takes it)."""
    layout: ttgl.constexpr = ttgl.BlockedLayout([R, C], [1, 32], [WR, WC], [1, 0])
    BLOCK_N: ttgl.constexpr = R * WR
    rows = ttgl.program_id(0).to(ttgl.int64) * BLOCK_N + ttgl.arange(0, BLOCK_N, layout=ttgl.SliceLayout(1, layout))
    dots, _ = rows_module._row_dots(x_ptr, q_ptr, s_ptr, f_ptr, q_ptr, s_ptr, f_ptr, rows, N, K, GROUP, INT4,
                                    LIMBS_ASM, DOT_ASM, layout, C * 32 * WC, False)
    dtype = hidden_ptr.dtype.element_ty
    out = dots.to(dtype).to(ttgl.float32)
    ttgl.store(hidden_ptr + rows, (ttgl.load(residual_ptr + rows).to(ttgl.float32) + out).to(dtype))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="chain_norm.jsonl")
    args = parser.parse_args()
    from profile_decode import replay_seconds
    normed_kernel = kernels._autotuned(kernels.TILE_CONFIGS, normed_row_kernel, key=["N", "K", "INT4", "GATED"])
    residual_kernel = kernels._autotuned(kernels.TILE_CONFIGS, residual_row_kernel, key=["N", "K", "INT4"])
    g_in, g_post = (torch.rand(HIDDEN, device="cuda", dtype=torch.bfloat16) + 0.5 for _ in range(2))
    start = torch.randn(1, HIDDEN, device="cuda", dtype=torch.bfloat16)
    for bits in (8, 4):
        constants = {**rows_module.kernel_constants(torch.bfloat16, bits), "NORM_ASM": normalize_asm(4 if bits == 4
                                                                                                     else 2)}
        group = kernels.INT4_GROUP_SIZE if bits == 4 else HIDDEN

        def normed_product(h, g, weights, gated=False):
            sizes = [weight.qweight.shape[0] for weight in weights]
            outputs = sizes[0] if gated else sum(sizes)
            out = h.new_empty(1, outputs)
            normed_kernel[rows_module.row_grid(outputs)](h, g, out, *rows_module.stacked_arguments(weights),
                                                         sum(sizes), EPS, HIDDEN, group, bits == 4, **constants,
                                                         GATED=gated)
            return out

        def residual_product(x, weight, residual):
            hidden = torch.empty_like(residual)
            outputs, width = weight.qweight.shape[0], x.shape[-1]
            residual_kernel[rows_module.row_grid(outputs)](
                x, hidden, residual, weight.qweight, weight.scale, rows_module.weight_offsets(weight), outputs, width,
                kernels.INT4_GROUP_SIZE if bits == 4 else width, bits == 4,
                **rows_module.kernel_constants(torch.bfloat16, bits))
            return hidden

        def shipped_layer(hidden, normed, weights):
            qkv = kernels.quantized_product(normed, weights["q|k|v"])
            hidden, normed = kernels.quantized_residual_norm(qkv[:, :HIDDEN].contiguous(), weights["o"][0],
                                                             residual=hidden, norm=g_post, eps=EPS)
            act = kernels.quantized_gated(normed, *weights["gate|up"])
            return kernels.quantized_residual_norm(act, weights["down"][0], residual=hidden, norm=g_in, eps=EPS)

        def on_load_layer(hidden, weights):
            qkv = normed_product(hidden, g_in, weights["q|k|v"])
            hidden = residual_product(qkv[:, :HIDDEN].contiguous(), weights["o"][0], hidden)
            act = normed_product(hidden, g_post, weights["gate|up"], gated=True)
            return residual_product(act, weights["down"][0], hidden)

        def plain_layer(x, weights):
            qkv = kernels.quantized_product(x, weights["q|k|v"])
            x = kernels.quantized_product(qkv[:, :HIDDEN].contiguous(), [weights["o"][0]])
            act = kernels.quantized_gated(x, *weights["gate|up"])
            return kernels.quantized_product(act, [weights["down"][0]])

        layers = layer_copies(bits)
        normed = kernels.residual_norm(torch.zeros_like(start), start, norm=g_in, eps=EPS)[1]
        shipped_hidden, shipped_normed, on_load_hidden = start, normed, start
        for weights in layers[:2]:
            shipped_hidden, shipped_normed = shipped_layer(shipped_hidden, shipped_normed, weights)
            on_load_hidden = on_load_layer(on_load_hidden, weights)
        difference = float((on_load_hidden.float() - shipped_hidden.float()).norm() / shipped_hidden.float().norm())
        append_record(args.output, dict(bits=bits, kind="check", relative_difference_two_layers=difference))
        print(f"int{bits}: two layers' hidden vectors differ by {difference:.2e} (relative)", flush=True)

        def shipped():
            hidden, normed = start, shipped_normed
            for weights in layers:
                hidden, normed = shipped_layer(hidden, normed, weights)
            return hidden

        def on_load():
            hidden = start
            for weights in layers:
                hidden = on_load_layer(hidden, weights)
            return hidden

        def plain():
            x = start
            for weights in layers:
                x = plain_layer(x, weights)
            return x

        for way, chain in (("shipped", shipped), ("on_load", on_load), ("plain", plain), ("shipped", shipped),
                           ("on_load", on_load)):
            chain()  # tuned before the graph's capture
            us = replay_seconds(chain) / len(layers) * 1e6
            append_record(args.output, dict(bits=bits, way=way, us_a_layer=us, layers=len(layers)))
            print(f"int{bits} {way}: {us:.2f} us a layer", flush=True)


if __name__ == "__main__":
    with torch.no_grad():
        main()
