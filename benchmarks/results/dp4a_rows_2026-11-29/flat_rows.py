"""Batch-1 products whose input is loaded once for several rows (2026-11-29, twenty-sixth session).

ladder.py: in the dp4a prototype's layout (and the shipped one's) the lanes of a warp lie along the weight's rows,
so every lane loads its chunk of the input itself, four 64-bit loads a chunk of 16 inputs; adding those loads to a
launch that only read the codes cost int4 q|k|v 8.4 -> 10.7 us and int8 14.7 -> 22.6 us, more than the arithmetic.
Triton chooses its own layouts (a 2-D (rows, chunks) tile got the scales' loads and the codes' in different layouts,
a shared-memory round trip a step), so these kernels are Gluon, the layout given: each thread holds R rows x C
neighbouring chunks (V inputs for int8), lanes and WC warps along the inputs (each warp reads 256-512 contiguous
bytes of a row a load), WR warps along the rows; the input is loaded once a thread for its R rows.
- `_gluon_pairs_kernel` (int4) and `_gluon_int8_kernel`: the shipped arithmetic (int4 in 16-bit pairs by
  `pair_dot_asm`; int8 codes to float32, multiply-add) over the bf16 input as it comes: drop-in for the shipped launch.
- `_gluon_flat_kernel`: dp4a_rows.py's integer sums over the input's limbs, stored in planes (plane j: word pair j of
  every chunk, contiguous) so that a thread's neighbouring chunks come in one 128-bit load a plane. A chunk is one
  int64 of codes: 16 int4 inputs (their limbs in INT4_ORDER) or 8 int8 inputs.
Same timing as dp4a_rows.py (microseconds a product, copies >= 200 MB replayed from a CUDA graph), beside the shipped
launch and the read-only floor; relative error against float64 products over the unrounded weights.

    python benchmarks/results/dp4a_rows_2026-11-29/flat_rows.py check     # CPU: the planes' sums
    python benchmarks/results/dp4a_rows_2026-11-29/flat_rows.py --output flat_rows.jsonl   # one GPU
"""
import argparse
import itertools
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE)), os.path.dirname(os.path.dirname(os.path.dirname(HERE)))]

from dp4a_rows import INT4_ORDER, SHAPES, chunk_limbs, exact_product  # noqa: E402
from quantized_decode_kernels import packed_weight, pair_dot_asm  # noqa: E402

try:
    import triton
    from triton.experimental import gluon
    from triton.experimental.gluon import language as ttgl
except ImportError:
    triton = None

LIMBS = 2
# Gluon: (rows a thread, chunks (int8 direct: inputs) a thread, warps along the rows, warps along the inputs);
# BLOCK_N = rows x warps along the rows, a step = chunks x 32 lanes x warps along the inputs
WARPS = ((1, 4), (2, 2), (1, 8), (2, 4), (4, 2))
PAIRS_CONFIGS = [(r, c, *w) for r, c, w in itertools.product((2, 4, 8), (1, 2), WARPS)]
INT8_CONFIGS = [(r, v, *w, bit_cast) for r, v, w, bit_cast in itertools.product((2, 4, 8), (8, 16), WARPS[:4], (True,))
                ] + [(r, 16, *w, False) for r, w in itertools.product((2, 4, 8), WARPS[:4])]
LIMB_CONFIGS = [(r, c, *w) for r, c, w in itertools.product((4, 8), (1, 2), ((1, 4), (2, 2), (2, 4)))] + [
    (2, 1, 2, 2), (2, 2, 2, 4), (4, 1, 2, 2), (2, 1, 4, 2), (8, 1, 1, 8), (4, 1, 1, 8)]


def chunk_inputs(bits: int) -> int:
    return 16 if bits == 4 else 8


def plane_limbs(x: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x's limbs as planes of int64 (2 LIMBS for int4, LIMBS for int8; K / chunk each) and (2, K / chunk) float32:
    the chunks' powers, then their sums."""
    chunk = chunk_inputs(bits)
    words, meta = chunk_limbs(x, LIMBS, INT4_ORDER if bits == 4 else tuple(range(8)), chunk)
    pairs = words.view(words.shape[0], LIMBS, chunk // 8, 2).contiguous().view(torch.int64)  # (chunks, limbs, j, 1)
    return pairs.squeeze(-1).permute(1, 2, 0).reshape(-1, words.shape[0]).contiguous(), meta.T.contiguous()


def emulated_flat(x: torch.Tensor, weight) -> torch.Tensor:
    """The kernel's sums in torch from the planes (the bytes dp4a sees): (N,) float64."""
    bits = 4 if weight.offset is not None else 8
    planes, meta = plane_limbs(x, bits)
    words = torch.stack([planes & 0xFFFFFFFF, (planes >> 32) & 0xFFFFFFFF], -1).view(LIMBS, -1, planes.shape[1], 2)
    limb_bytes = torch.stack([(words >> s) & 255 for s in (0, 8, 16, 24)], -1)  # (limbs, j, chunks, 2, 4)
    limb_bytes[-1] = torch.where(limb_bytes[-1] >= 128, limb_bytes[-1] - 256, limb_bytes[-1])
    limb_bytes = limb_bytes.permute(0, 2, 1, 3, 4).reshape(LIMBS, planes.shape[1], -1)  # (limbs, chunks, bytes)
    q = weight.qweight
    if bits == 4:
        q = q.long() & 0xFFFFFFFF
        nibbles = torch.stack([q & 0x0F0F0F0F, (q >> 4) & 0x0F0F0F0F], -1).view(q.shape[0], -1, 4)
        code_bytes = torch.stack([(nibbles >> s) & 255 for s in (0, 8, 16, 24)], -1).view(q.shape[0], -1, 16)
    else:
        code_bytes = q.long().view(q.shape[0], -1, 8)
    sums = sum(torch.einsum("ncb,cb->nc", code_bytes, limb_bytes[limb]) << (8 * limb) for limb in range(LIMBS))
    power, xsum = meta[0].double(), meta[1].double()
    if bits == 8:
        return (sums.double() * power).sum(-1) * weight.scale.double().view(-1)
    repeat = x.numel() // weight.scale.shape[0] // 16
    scale = weight.scale.double().T.repeat_interleave(repeat, 1)
    offset = weight.offset.double().T.repeat_interleave(repeat, 1)
    return (scale * sums.double() * power + offset * xsum).sum(-1)


def flat_asm(bits: int) -> str:
    """PTX: $0 = sum over a chunk of code x v (int32); $1 the chunk's codes (int64), then its limb planes' int64s
    (int4: limb 0 words 0-1, 2-3, limb 1 words 0-1, 2-3; int8: limb 0, limb 1), LIMBS = 2."""
    lines = ["mov.b64 {e0, e1}, $1;"]
    if bits == 4:
        lines += ["and.b32 c0, e0, 0x0F0F0F0F;", "shr.u32 c1, e0, 4;", "and.b32 c1, c1, 0x0F0F0F0F;",
                  "and.b32 c2, e1, 0x0F0F0F0F;", "shr.u32 c3, e1, 4;", "and.b32 c3, c3, 0x0F0F0F0F;",
                  "mov.b64 {h0, h1}, $4;", "mov.b64 {h2, h3}, $5;", "mov.b64 {l0, l1}, $2;", "mov.b64 {l2, l3}, $3;"]
        codes, kind = ("c0", "c1", "c2", "c3"), "u32"
    else:
        lines += ["mov.b64 {l0, l1}, $2;", "mov.b64 {h0, h1}, $3;"]
        codes, kind = ("e0", "e1"), "s32"
    for index, code in enumerate(codes):
        lines.append(f"dp4a.{kind}.s32 s, {code}, h{index}, {'s' if index else '0'};")
    lines.append("shl.b32 s, s, 8;")
    for index, code in enumerate(codes):
        lines.append(f"dp4a.{kind}.u32 s, {code}, l{index}, s;")
    lines.append("mov.b32 $0, s;")
    registers = ".reg .b32 e0, e1, c0, c1, c2, c3, l0, l1, l2, l3, h0, h1, h2, h3, s;"
    return "\n".join(["{", registers, *lines, "}"])


INT4_WORDS = ((0, 4, 1, 5), (2, 6, 3, 7), (8, 12, 9, 13), (10, 14, 11, 15))  # INT4_ORDER, a limb word at a time
INT8_WORDS = ((0, 1, 2, 3), (4, 5, 6, 7))


def limbs_asm(bits: int) -> str:
    """PTX making a chunk's limbs from its bf16 inputs in registers, as `plane_limbs` makes them (LIMBS = 2):
    $0..: the limb planes' int64s (int4: limb 0 words 0-1, 2-3, limb 1 words 0-1, 2-3; int8: limb 0, limb 1), then
    the chunk's power of two and (int4) its sum, float32; then the inputs, four bf16 an int64. The largest |input|'s
    exponent by integer maxima of the 16-bit patterns; each input times 2^shift rounded to an integer by adding and
    taking away 1.5 x 2^23 (ties to even, as torch.round); the two bytes of each 16-bit integer gathered into the limb
    words by byte permutes."""
    words = INT4_WORDS if bits == 4 else INT8_WORDS
    inputs = 4 * len(words)
    outputs = len(words) + (2 if bits == 4 else 1)
    first_input = outputs
    lines = [f"mov.b64 {{w{2 * j}, w{2 * j + 1}}}, ${first_input + j};" for j in range(inputs // 4)]
    lines += [f"and.b32 a{j}, w{j}, 0x7FFF7FFF;" for j in range(inputs // 2)]
    lines += [f"max.u16x2 a0, a0, a{j};" for j in range(1, inputs // 2)]
    lines += ["shr.u32 e, a0, 16;", "and.b32 a0, a0, 0xFFFF;", "max.u32 e, e, a0;", "shr.u32 e, e, 7;",
              "max.u32 e, e, 15;",  # bf16 exponent of the largest; shift = 141 - e <= 126 (2^shift a float32)
              "sub.u32 t, 268, e;", "shl.b32 t, t, 23;", "mov.b32 scale, t;",
              "sub.u32 t, e, 14;", "shl.b32 t, t, 23;", f"mov.b32 ${len(words)}, t;"]
    for i in range(inputs):
        word = f"w{i // 2}"
        lines.append(f"shl.b32 t, {word}, 16;" if i % 2 == 0 else f"and.b32 t, {word}, 0xFFFF0000;")
        lines += ["mov.b32 f, t;", "fma.rn.f32 g, f, scale, 0f4B400000;", f"mov.b32 v{i}, g;",
                  f"sub.s32 v{i}, v{i}, 0x4B400000;"]
        if bits == 4:
            lines.append("mov.f32 sum, f;" if i == 0 else "add.f32 sum, sum, f;")
    for index, (a, b, c, d) in enumerate(words):
        lines += [f"prmt.b32 t, v{a}, v{b}, 0x5140;", f"prmt.b32 u, v{c}, v{d}, 0x5140;",
                  f"prmt.b32 l{index}, t, u, 0x5410;", f"prmt.b32 h{index}, t, u, 0x7632;"]
    if bits == 4:
        lines += ["mov.b64 $0, {l0, l1};", "mov.b64 $1, {l2, l3};", "mov.b64 $2, {h0, h1};", "mov.b64 $3, {h2, h3};",
                  "mov.b32 $5, sum;"]
    else:
        lines += ["mov.b64 $0, {l0, l1};", "mov.b64 $1, {h0, h1};"]
    registers = [".reg .b32 " + ", ".join([f"w{j}" for j in range(inputs // 2)] + [f"a{j}" for j in range(inputs // 2)]
                                          + [f"v{j}" for j in range(inputs)] + ["l0", "l1", "l2", "l3", "h0", "h1",
                                                                               "h2", "h3", "e", "t", "u"]) + ";",
                 ".reg .f32 f, g, scale, sum;"]
    return "\n".join(["{", *registers, *lines, "}"])


if triton is not None:

    @gluon.jit
    def _gluon_flat_kernel(planes_ptr, meta_ptr, q_ptr, s_ptr, f_ptr, out_ptr, N, K: ttgl.constexpr,
                           GROUP: ttgl.constexpr, INT4: ttgl.constexpr, ASM: ttgl.constexpr,
                           CONSTRAINTS: ttgl.constexpr, R: ttgl.constexpr, C: ttgl.constexpr, WR: ttgl.constexpr,
                           WC: ttgl.constexpr, INLINE: ttgl.constexpr = False, LIMBS_ASM: ttgl.constexpr = ""):
        """out[rows] = x . w[rows] from x's limb planes (`plane_limbs`): each thread R rows x C neighbouring chunks,
        lanes along the chunks, WR x WC warps; each (row, chunk)'s integer sum by `flat_asm`, scaled in float32; the
        planes and powers loaded once a thread for its R rows. INLINE: made from x's bf16 chunks in registers by
        `limbs_asm` instead (planes_ptr is then x; no input preparation)."""
        layout: ttgl.constexpr = ttgl.BlockedLayout([R, C], [1, 32], [WR, WC], [1, 0])
        along_chunks: ttgl.constexpr = ttgl.SliceLayout(0, layout)
        CHUNK: ttgl.constexpr = 16 if INT4 else 8
        KC: ttgl.constexpr = K // CHUNK
        CHUNKS: ttgl.constexpr = C * 32 * WC
        BLOCK_N: ttgl.constexpr = R * WR
        rows = ttgl.program_id(0).to(ttgl.int64) * BLOCK_N + ttgl.arange(0, BLOCK_N,
                                                                        layout=ttgl.SliceLayout(1, layout))
        planes = planes_ptr.to(ttgl.pointer_type(ttgl.int64))
        codes64 = q_ptr.to(ttgl.pointer_type(ttgl.int64))
        accumulator = ttgl.zeros([BLOCK_N, CHUNKS], ttgl.float32, layout)
        for k0 in range(0, KC, CHUNKS):
            chunk = k0 + ttgl.arange(0, CHUNKS, layout=along_chunks)
            inside = chunk < KC
            at = rows[:, None] * KC + chunk[None, :]
            codes = ttgl.load(codes64 + at, mask=(at >= 0) & inside[None, :], other=0, eviction_policy="evict_first")
            if INLINE and INT4:
                made = ttgl.inline_asm_elementwise(
                    LIMBS_ASM, "=l,=l,=l,=l,=r,=r,l,l,l,l",
                    [ttgl.load(planes + 4 * chunk, mask=inside, other=0),
                     ttgl.load(planes + 4 * chunk + 1, mask=inside, other=0),
                     ttgl.load(planes + 4 * chunk + 2, mask=inside, other=0),
                     ttgl.load(planes + 4 * chunk + 3, mask=inside, other=0)],
                    dtype=(ttgl.int64, ttgl.int64, ttgl.int64, ttgl.int64, ttgl.float32, ttgl.float32), is_pure=True,
                    pack=1)
                p0, p1, p2, p3 = made[0][None, :], made[1][None, :], made[2][None, :], made[3][None, :]
                power, xsum = made[4][None, :], made[5][None, :]
            elif INLINE:
                made = ttgl.inline_asm_elementwise(
                    LIMBS_ASM, "=l,=l,=r,l,l",
                    [ttgl.load(planes + 2 * chunk, mask=inside, other=0),
                     ttgl.load(planes + 2 * chunk + 1, mask=inside, other=0)],
                    dtype=(ttgl.int64, ttgl.int64, ttgl.float32), is_pure=True, pack=1)
                p0, p1, power = made[0][None, :], made[1][None, :], made[2][None, :]
            else:
                p0 = ttgl.load(planes + chunk, mask=inside, other=0)[None, :]
                p1 = ttgl.load(planes + KC + chunk, mask=inside, other=0)[None, :]
                power = ttgl.load(meta_ptr + chunk, mask=inside, other=0)[None, :]
                if INT4:
                    p2 = ttgl.load(planes + 2 * KC + chunk, mask=inside, other=0)[None, :]
                    p3 = ttgl.load(planes + 3 * KC + chunk, mask=inside, other=0)[None, :]
                    xsum = ttgl.load(meta_ptr + KC + chunk, mask=inside, other=0)[None, :]
            if INT4:
                sums = ttgl.inline_asm_elementwise(
                    ASM, CONSTRAINTS, [codes, ttgl.broadcast(p0, codes)[0], ttgl.broadcast(p1, codes)[0],
                                       ttgl.broadcast(p2, codes)[0], ttgl.broadcast(p3, codes)[0]],
                    dtype=ttgl.int32, is_pure=True, pack=1)
                where = (chunk[None, :] * CHUNK // GROUP) * N + rows[:, None]
                scale = ttgl.load(s_ptr + where, mask=(where >= 0) & inside[None, :], other=0).to(ttgl.float32)
                offset = ttgl.load(f_ptr + where, mask=(where >= 0) & inside[None, :], other=0).to(ttgl.float32)
                accumulator += sums.to(ttgl.float32) * (scale * power) + offset * xsum
            else:
                sums = ttgl.inline_asm_elementwise(
                    ASM, CONSTRAINTS, [codes, ttgl.broadcast(p0, codes)[0], ttgl.broadcast(p1, codes)[0]],
                    dtype=ttgl.int32, is_pure=True, pack=1)
                accumulator += sums.to(ttgl.float32) * power
        total = ttgl.sum(accumulator, axis=1)
        if not INT4:
            total = total * ttgl.load(s_ptr + rows).to(ttgl.float32)
        ttgl.store(out_ptr + rows, total.to(out_ptr.dtype.element_ty))


    @gluon.jit
    def _gluon_pairs_kernel(x_ptr, q_ptr, s_ptr, f_ptr, out_ptr, N, K: ttgl.constexpr, GROUP: ttgl.constexpr,
                            ASM: ttgl.constexpr, R: ttgl.constexpr, C: ttgl.constexpr, WR: ttgl.constexpr,
                            WC: ttgl.constexpr):
        """The shipped int4 one-row product (16-bit pairs, `pair_dot_asm`, bf16 input as it comes) in the layout of
        `_gluon_flat_kernel`: each thread's 16 inputs a chunk loaded once for its R rows. No input preparation."""
        layout: ttgl.constexpr = ttgl.BlockedLayout([R, C], [1, 32], [WR, WC], [1, 0])
        along_chunks: ttgl.constexpr = ttgl.SliceLayout(0, layout)
        KC: ttgl.constexpr = K // 16
        CHUNKS: ttgl.constexpr = C * 32 * WC
        BLOCK_N: ttgl.constexpr = R * WR
        rows = ttgl.program_id(0).to(ttgl.int64) * BLOCK_N + ttgl.arange(0, BLOCK_N,
                                                                        layout=ttgl.SliceLayout(1, layout))
        x64 = x_ptr.to(ttgl.pointer_type(ttgl.int64))
        codes64 = q_ptr.to(ttgl.pointer_type(ttgl.int64))
        accumulator = ttgl.zeros([BLOCK_N, CHUNKS], ttgl.float32, layout)
        for k0 in range(0, KC, CHUNKS):
            chunk = k0 + ttgl.arange(0, CHUNKS, layout=along_chunks)
            inside = chunk < KC
            at = rows[:, None] * KC + chunk[None, :]
            full = (at >= 0) & inside[None, :]
            packed = ttgl.load(codes64 + at, mask=full, other=0, eviction_policy="evict_first")
            x0 = ttgl.broadcast(ttgl.load(x64 + 4 * chunk, mask=inside, other=0)[None, :], packed)[0]
            x1 = ttgl.broadcast(ttgl.load(x64 + 4 * chunk + 1, mask=inside, other=0)[None, :], packed)[0]
            x2 = ttgl.broadcast(ttgl.load(x64 + 4 * chunk + 2, mask=inside, other=0)[None, :], packed)[0]
            x3 = ttgl.broadcast(ttgl.load(x64 + 4 * chunk + 3, mask=inside, other=0)[None, :], packed)[0]
            where = (chunk[None, :] * 16 // GROUP) * N + rows[:, None]
            scale = ttgl.load(s_ptr + where, mask=full, other=0).to(ttgl.uint16, bitcast=True)
            offset = ttgl.load(f_ptr + where, mask=full, other=0).to(ttgl.uint16, bitcast=True)
            accumulator += ttgl.inline_asm_elementwise(
                ASM, "=r,r,r,l,l,l,l,h,h", [packed.to(ttgl.int32), (packed >> 32).to(ttgl.int32), x0, x1, x2, x3,
                                            scale, offset], dtype=ttgl.float32, is_pure=True, pack=1)
        ttgl.store(out_ptr + rows, ttgl.sum(accumulator, axis=1).to(out_ptr.dtype.element_ty))

    @gluon.jit
    def _gluon_int8_kernel(x_ptr, q_ptr, s_ptr, out_ptr, N, K: ttgl.constexpr, R: ttgl.constexpr,
                           V: ttgl.constexpr, WR: ttgl.constexpr, WC: ttgl.constexpr, BIT_CAST: ttgl.constexpr):
        """The shipped int8 one-row product (codes to float32, multiply-add) with each thread's V inputs loaded once
        for its R rows, lanes along the inputs. BIT_CAST: codes to floats by the shipped bit trick."""
        layout: ttgl.constexpr = ttgl.BlockedLayout([R, V], [1, 32], [WR, WC], [1, 0])
        along: ttgl.constexpr = ttgl.SliceLayout(0, layout)
        STEP: ttgl.constexpr = V * 32 * WC
        BLOCK_N: ttgl.constexpr = R * WR
        rows = ttgl.program_id(0).to(ttgl.int64) * BLOCK_N + ttgl.arange(0, BLOCK_N,
                                                                        layout=ttgl.SliceLayout(1, layout))
        accumulator = ttgl.zeros([BLOCK_N, STEP], ttgl.float32, layout)
        for k0 in range(0, K, STEP):
            inputs = k0 + ttgl.arange(0, STEP, layout=along)
            inside = inputs < K
            at = rows[:, None] * K + inputs[None, :]
            codes = ttgl.load(q_ptr + at, mask=(at >= 0) & inside[None, :], other=0, eviction_policy="evict_first")
            x = ttgl.load(x_ptr + inputs, mask=inside, other=0).to(ttgl.float32)[None, :]
            if BIT_CAST:
                weights = ((codes.to(ttgl.int32) + 128) | 0x4B000000).to(ttgl.float32, bitcast=True) - 8388736.0
            else:
                weights = codes.to(ttgl.float32)
            accumulator += weights * x
        total = ttgl.sum(accumulator, axis=1) * ttgl.load(s_ptr + rows).to(ttgl.float32)
        ttgl.store(out_ptr + rows, total.to(out_ptr.dtype.element_ty))


def gluon_direct_product(x: torch.Tensor, weight, config: tuple) -> torch.Tensor:
    """x . w for one bf16 row by `_gluon_pairs_kernel` (int4, config (R, C, WR, WC)) or `_gluon_int8_kernel` (int8,
    config (R, V, WR, WC, BIT_CAST))."""
    rows, k = weight.qweight.shape[0], x.numel()
    out = torch.empty(rows, dtype=x.dtype, device=x.device)
    if weight.offset is not None:
        r, c, wr, wc = config
        asm = pair_dot_asm("bf16" if x.dtype == torch.bfloat16 else "f16")
        _gluon_pairs_kernel[(rows // (r * wr),)](x, weight.qweight, weight.scale, weight.offset, out, rows, k,
                                                 k // weight.scale.shape[0], asm, r, c, wr, wc, num_warps=wr * wc)
    else:
        r, v, wr, wc, bit_cast = config
        _gluon_int8_kernel[(rows // (r * wr),)](x, weight.qweight, weight.scale, out, rows, k, r, v, wr, wc,
                                                bit_cast, num_warps=wr * wc)
    return out


def gluon_flat_product(prepared: tuple, weight, config: tuple, dtype: torch.dtype) -> torch.Tensor:
    """x . w for one row whose limb planes are `prepared`, by `_gluon_flat_kernel`, config = (R, C, WR, WC);
    `prepared` = (x,): the limbs made in the kernel (INLINE)."""
    r, c, wr, wc = config
    inline = len(prepared) == 1
    planes, meta = (prepared[0], prepared[0]) if inline else prepared
    bits = 4 if weight.offset is not None else 8
    rows = weight.qweight.shape[0]
    k = planes.numel() if inline else planes.shape[1] * chunk_inputs(bits)
    out = torch.empty(rows, dtype=dtype, device=planes.device)
    group = k // weight.scale.shape[0] if bits == 4 else k
    constraints = "=r," + ",".join(["l"] * (5 if bits == 4 else 3))
    _gluon_flat_kernel[(rows // (r * wr),)](planes, meta, weight.qweight, weight.scale,
                                            weight.offset if bits == 4 else weight.scale, out, rows, k, group,
                                            bits == 4, flat_asm(bits), constraints, r, c, wr, wc, inline,
                                            limbs_asm(bits) if inline else "", num_warps=wr * wc)
    return out


def check() -> None:
    """CPU: the planes' emulated sums against float64 products, int4 and int8, with outlier features."""
    torch.manual_seed(0)
    for bits in (4, 8):
        weight = packed_weight(torch.randn(64, 512, dtype=torch.bfloat16) / 16, bits)
        x = torch.randn(512)
        x[:4] *= 100
        x[32:48] = 0
        x = x.bfloat16()
        unrounded = exact_product(x, weight, False)
        ours = emulated_flat(x, weight)
        print(f"int{bits}: relative error against unrounded weights "
              f"{float((ours - unrounded).norm() / unrounded.norm()):.3e}\n{flat_asm(bits)}")


def main() -> None:
    from bench_records import append_record
    from profile_decode import replay_seconds
    from quantized_decode_kernels import launch_quantized_kernel
    from stream_floor import read, stored_bytes
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="flat_rows.jsonl")
    parser.add_argument("--bits", default="4,8")
    parser.add_argument("--direct", action="store_true", help="also the int8 Gluon kernel over the bf16 input")
    args = parser.parse_args()
    for bits, shape in itertools.product(map(int, args.bits.split(",")), SHAPES):
        n, k = SHAPES[shape]
        size = stored_bytes(f"int{bits}", n, k)
        copies = max(6, math.ceil(200e6 / size))
        bf16 = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5 for _ in range(3)]
        packed = [packed_weight(bf16[i % 3] + i / k, bits) for i in range(copies)]
        x = torch.randn(k, device="cuda")
        x[:4] *= 30
        x = x.bfloat16()
        row = x.view(1, -1)
        unrounded = exact_product(x, packed[0], False)
        record = dict(bits=bits, shape=shape, bytes=size)
        shipped = launch_quantized_kernel(row, [packed[0]])[0].double()
        append_record(args.output, dict(record, way="shipped", us=replay_seconds(
            lambda: [launch_quantized_kernel(row, [w]) for w in packed]) / copies * 1e6,
            error=float((shipped - unrounded).norm() / unrounded.norm())))
        buffers = [torch.zeros(size // 8, dtype=torch.int64, device="cuda") for _ in range(copies)]
        append_record(args.output, dict(record, way="read only", us=min(
            replay_seconds(lambda: [read(b, config) for b in buffers]) for config in
            ((512, 2, 8), (256, 4, 4), (512, 2, 4), (2048, 2, 4), (1024, 2, 8), (2048, 1, 8), (512, 1, 4))) / copies
            * 1e6))
        prepared = plane_limbs(x, bits)
        inline, given = (gluon_flat_product(p, packed[0], LIMB_CONFIGS[0], x.dtype).double() for p in ((x,), prepared))
        append_record(args.output, dict(record, way="limbs made inline against given",
                                        largest_difference=float((inline - given).abs().max() / given.abs().max())))
        sweeps = [("gluon direct", INT8_CONFIGS if bits == 8 and args.direct else [],
                   lambda w, config: gluon_direct_product(x, w, config)),
                  ("gluon limbs", LIMB_CONFIGS, lambda w, config: gluon_flat_product(prepared, w, config, x.dtype)),
                  ("gluon limbs inline", LIMB_CONFIGS,
                   lambda w, config: gluon_flat_product((x,), w, config, x.dtype))]
        for name, configs, product in sweeps:
            for config in configs:
                if n % (config[0] * config[2]):
                    continue
                try:
                    out = product(packed[0], config).double()
                    seconds = replay_seconds(lambda: [product(w, config) for w in packed])
                except Exception as exception:  # noqa: BLE001 - a configuration that fails is recorded
                    append_record(args.output, dict(record, way=[name, *config], failed=f"{exception}"[-300:]))
                    continue
                append_record(args.output, dict(record, way=[name, *config], us=seconds / copies * 1e6,
                                                error=float((out - unrounded).norm() / unrounded.norm())))

if __name__ == "__main__":
    with torch.no_grad():
        check() if sys.argv[1:] == ["check"] else main()
