"""One-row products over quantized weights (batch-1 decoding) on the integer dot-product instruction, in Gluon.

A batch-1 product reads each weight once. quantized_decode_kernels.py's Triton launch lays the lanes of a warp along
the weight's rows, so every lane loads the input for its own rows: measured on an H200, a launch that only read the
codes in that layout ran at the read-only floor (int4 q|k|v 8.4 us), adding the input's loads took it to 10.7 and the
arithmetic to 13.1 (benchmarks/RESULTS.md, "Quantized fast decoding", twenty-sixth session). Here the layout is
given (Gluon): each thread holds R rows x C neighbouring chunks, lanes and WC warps along the inputs (a warp reads
contiguous bytes of a row), WR warps along the rows; a thread loads a chunk's inputs once for its R rows.

It cuts them in registers (`limbs_asm`) into two int8 limbs of 16-bit integers under the chunk's own power of two
(the largest input's exponent): exact for bf16 inputs (8 significant bits) and for fp16 inputs down to 2^-15 of the
chunk's largest. Per chunk and row `dot_asm` sums code x limb-byte products exactly in int32 with dp4a (8 a chunk of
16 int4 weights, 4 a chunk of 8 int8 weights), the limbs chained by a shift, and the chunk's sum is scaled in float32:
int4 scale x 2^-e x sum(code x v) + offset x sum(x) (the inputs summed in float32 as the limbs are cut), int8 2^-e x
sum(code x v), times the row's scale at the end. No weight is rounded to 16 bits on the way (dequantize() rounds it;
the Triton launch's int4 pairs sum in 16 bits): the products are the weight-only products to float32 rounding.

A chunk is one int64 of codes: 16 int4 inputs (two words of weight_quantization.py's layout; the limbs' bytes in the
order one and-mask of a word gives its codes, INT4_LIMB_WORDS) or 8 int8 inputs. Stacked weights (q|k|v), the SiLU-
gated gate|up (GATED) and the residual add + RMSNorm by the last program (o, down) as the Triton launch has them.
quantized_decode_kernels.py routes one-row products here where `takes_row_kernel` says (the formats of ROW_KERNEL_BITS;
Gluon; sm_80 and later: dp4a, 16-bit pair maxima); the Triton launch serves the rest, and the CPU tests
(Triton's interpreter runs no Gluon nor PTX).
"""

import functools

import torch

try:
    from triton.experimental import gluon
    from triton.experimental.gluon import language as ttgl
except ImportError:  # no Triton, or one without Gluon (before 3.5): the Triton launch serves one row
    gluon = None

INT4_LIMB_WORDS = ((0, 4, 1, 5), (2, 6, 3, 7), (8, 12, 9, 13), (10, 14, 11, 15))  # a chunk's inputs, a word's bytes
INT8_LIMB_WORDS = ((0, 1, 2, 3), (4, 5, 6, 7))
# (R rows, C chunks a thread, WR warps along the rows, WC along the inputs): the fastest in streaming sweeps of the
# 7B products on an H200 (benchmarks/results/dp4a_rows_2026-11-29/e/), timed on first use per shape as the Triton
# launch's are (replays; on int8 it took tiles 3.5% faster over a layer's four products than the best fixed one).
ROW_TILES = ((8, 1, 1, 8), (8, 1, 1, 4), (8, 1, 2, 2), (8, 1, 2, 4), (4, 1, 1, 4), (4, 1, 1, 8), (4, 2, 1, 4))
# Weight formats routed here: both, timed in the decoder on an H200 against the Triton launch (int4 485 against 437
# tokens/s at batch 1, int8 408 against 347; benchmarks/results/dp4a_row_kernel_2026-11-29/). int4 was slower here
# until its groups' scales and offsets, whose load mask the compiler saw varying along the rows, loaded 128 bits at a
# time; a format left out of this tuple keeps the Triton launch.
ROW_KERNEL_BITS = (4, 8)
# bf16 and fp16 inputs: (16-bit pair maximum, bits under the exponent, the float32 scale's and power's biased
# exponents as (constant - E) and (E + constant) for the largest input's biased exponent E, least E taken)
INPUT_FORMATS = {torch.bfloat16: ("bf16", 7, 268, -14, 15), torch.float16: ("f16", 10, 156, 98, 0)}
MIN_NORM_BLOCK = 256  # the residual add and norm's values one program holds: at least a value a thread


def limbs_asm(dtype: torch.dtype, bits: int) -> str:
    """PTX cutting a chunk's inputs (int4: 16, int8: 8; four 16-bit inputs an int64 operand, after the outputs) into
    two limbs: outputs the limb words as int64s (int4: limb 0 words 0-1, 2-3, limb 1 words 0-1, 2-3; int8: limb 0,
    limb 1), then the chunk's 2^-e and (int4) its sum, float32. The largest |input| by 16-bit pair maxima of the
    inputs' magnitudes; each input times 2^e rounded to an integer (|v| < 2^15) by adding and taking away 1.5 x 2^23
    (ties to even); the low and high bytes of the integers gathered into the limb words by byte permutes."""
    kind, mantissa, scale_base, power_base, least = INPUT_FORMATS[dtype]
    words = INT4_LIMB_WORDS if bits == 4 else INT8_LIMB_WORDS
    inputs = 4 * len(words)
    outputs = len(words) + (2 if bits == 4 else 1)
    lines = [f"mov.b64 {{w{2 * j}, w{2 * j + 1}}}, ${outputs + j};" for j in range(inputs // 4)]
    lines += [f"and.b32 a{j}, w{j}, 0x7FFF7FFF;" for j in range(inputs // 2)]
    lines += [f"max.{kind}x2 a0, a0, a{j};" for j in range(1, inputs // 2)]
    lines += ["shr.u32 e, a0, 16;", "and.b32 a0, a0, 0xFFFF;", "max.u32 e, e, a0;", f"shr.u32 e, e, {mantissa};",
              f"max.u32 e, e, {least};",  # the least exponent whose 2^e a float32 holds
              f"sub.u32 t, {scale_base}, e;", "shl.b32 scale, t, 23;",
              f"add.s32 t, e, {power_base};", f"shl.b32 ${len(words)}, t, 23;"]
    for i in range(inputs):
        word = f"w{i // 2}"
        if kind == "bf16":
            lines.append(f"shl.b32 f, {word}, 16;" if i % 2 == 0 else f"and.b32 f, {word}, 0xFFFF0000;")
        else:
            lines += [f"mov.b32 {{l, h}}, {word};", f"cvt.f32.f16 f, {'l' if i % 2 == 0 else 'h'};"]
        lines += ["fma.rn.f32 g, f, scale, 0f4B400000;", f"sub.s32 v{i}, g, 0x4B400000;"]
        if bits == 4:
            lines.append("mov.b32 sum, f;" if i == 0 else "add.f32 sum, sum, f;")
    for index, (a, b, c, d) in enumerate(words):
        lines += [f"prmt.b32 t, v{a}, v{b}, 0x5140;", f"prmt.b32 u, v{c}, v{d}, 0x5140;",
                  f"prmt.b32 low{index}, t, u, 0x5410;", f"prmt.b32 high{index}, t, u, 0x7632;"]
    if bits == 4:
        lines += ["mov.b64 $0, {low0, low1};", "mov.b64 $1, {low2, low3};", "mov.b64 $2, {high0, high1};",
                  "mov.b64 $3, {high2, high3};", "mov.b32 $5, sum;"]
    else:
        lines += ["mov.b64 $0, {low0, low1};", "mov.b64 $1, {high0, high1};"]
    names = ([f"w{j}" for j in range(inputs // 2)] + [f"a{j}" for j in range(inputs // 2)]
             + [f"v{j}" for j in range(inputs)] + [f"{limb}{j}" for limb in ("low", "high") for j in range(len(words))]
             + ["e", "t", "u", "f", "g", "scale", "sum"])
    return "\n".join(["{", f".reg .b32 {', '.join(names)};", ".reg .b16 l, h;", *lines, "}"])


def dot_asm(bits: int) -> str:
    """PTX: $0 = sum over a chunk of code x v (int32, exact), v the 16-bit integers `limbs_asm` cut; $1 the chunk's
    codes (int64), then its limbs' int64s as `limbs_asm` gives them. int4: one and-mask of a word gives its codes at
    inputs (0, 4, 1, 5), a shift and the mask those at (2, 6, 3, 7): the limb words' order."""
    lines = ["mov.b64 {e0, e1}, $1;"]
    if bits == 4:
        lines += ["and.b32 c0, e0, 0x0F0F0F0F;", "shr.u32 c1, e0, 4;", "and.b32 c1, c1, 0x0F0F0F0F;",
                  "and.b32 c2, e1, 0x0F0F0F0F;", "shr.u32 c3, e1, 4;", "and.b32 c3, c3, 0x0F0F0F0F;",
                  "mov.b64 {l0, l1}, $2;", "mov.b64 {l2, l3}, $3;", "mov.b64 {h0, h1}, $4;", "mov.b64 {h2, h3}, $5;"]
        codes, kind = ("c0", "c1", "c2", "c3"), "u32"
    else:
        lines += ["mov.b64 {l0, l1}, $2;", "mov.b64 {h0, h1}, $3;"]
        codes, kind = ("e0", "e1"), "s32"
    lines += [f"dp4a.{kind}.s32 s, {code}, h{index}, {'s' if index else '0'};" for index, code in enumerate(codes)]
    lines.append("shl.b32 s, s, 8;")  # the high limb's sum is worth 256 low ones
    lines += [f"dp4a.{kind}.u32 s, {code}, l{index}, s;" for index, code in enumerate(codes)]
    lines.append("mov.b32 $0, s;")
    return "\n".join(["{", ".reg .b32 e0, e1, c0, c1, c2, c3, l0, l1, l2, l3, h0, h1, h2, h3, s;", *lines, "}"])


if gluon is not None:
    # Gluon's names change between Triton releases: up to 3.6, and after
    _thread_barrier = getattr(ttgl, "thread_barrier", None) or ttgl.barrier

    @gluon.jit
    def stacked_weight(start, q0, q1, q2, s0, s1, s2, f0, f1, f2, n0, n01, N):
        """The weight of up to three stacked ones (outputs [0, n0), [n0, n01), [n01, N)) that holds output `start`:
        its codes, scales and offsets, `start`'s row in it and its number of rows (quantized_prompt_kernel.py's
        kernel takes it too)."""
        if start < n0:
            q_ptr, s_ptr, f_ptr, first, rows_in_weight = q0, s0, f0, start, n0
        elif start < n01:
            q_ptr, s_ptr, f_ptr, first, rows_in_weight = q1, s1, f1, start - n0, n01 - n0
        else:
            q_ptr, s_ptr, f_ptr, first, rows_in_weight = q2, s2, f2, start - n01, N - n01
        return q_ptr, s_ptr, f_ptr, first, rows_in_weight

    @gluon.jit
    def _chunk_limbs(x64, chunk, inside, INT4: ttgl.constexpr, LIMBS_ASM: ttgl.constexpr):
        """The limbs of the input chunks `chunk` (where `inside`) as `limbs_asm` makes them: (l0, l1, l2, l3, 2^-e,
        sum(x)), int8 inputs' l2, l3 and sum being repeats (unused)."""
        if INT4:
            made = ttgl.inline_asm_elementwise(
                LIMBS_ASM, "=l,=l,=l,=l,=r,=r,l,l,l,l",
                [ttgl.load(x64 + 4 * chunk, mask=inside, other=0), ttgl.load(x64 + 4 * chunk + 1, mask=inside, other=0),
                 ttgl.load(x64 + 4 * chunk + 2, mask=inside, other=0),
                 ttgl.load(x64 + 4 * chunk + 3, mask=inside, other=0)],
                dtype=(ttgl.int64, ttgl.int64, ttgl.int64, ttgl.int64, ttgl.float32, ttgl.float32), is_pure=True,
                pack=1)
            return made[0], made[1], made[2], made[3], made[4], made[5]
        made = ttgl.inline_asm_elementwise(
            LIMBS_ASM, "=l,=l,=r,l,l",
            [ttgl.load(x64 + 2 * chunk, mask=inside, other=0), ttgl.load(x64 + 2 * chunk + 1, mask=inside, other=0)],
            dtype=(ttgl.int64, ttgl.int64, ttgl.float32), is_pure=True, pack=1)
        return made[0], made[1], made[0], made[1], made[2], made[2]

    @gluon.jit
    def _chunk_terms(q_ptr, s_ptr, f_ptr, rows, rows_in_weight, chunk, inside, limbs, K: ttgl.constexpr,
                     GROUP: ttgl.constexpr, INT4: ttgl.constexpr, DOT_ASM: ttgl.constexpr):
        """Each (row, chunk)'s share of the product, float32 (rows x chunks): int4 scale x 2^-e x sum(code x v) +
        offset x sum(x), int8 2^-e x sum(code x v) (the row's scale applied after)."""
        l0, l1, l2, l3, power, total = limbs
        KC: ttgl.constexpr = K // 16 if INT4 else K // 8
        at = rows[:, None] * KC + chunk[None, :]
        everywhere = ttgl.broadcast(inside[None, :], at)[0]  # the same along the rows: the scales load 8 at a time
        codes = ttgl.load(q_ptr.to(ttgl.pointer_type(ttgl.int64)) + at, mask=everywhere, other=0,
                          eviction_policy="evict_first")  # read once: keep L1 for the input, scales, offsets
        if INT4:
            sums = ttgl.inline_asm_elementwise(
                DOT_ASM, "=r,l,l,l,l,l", [codes, ttgl.broadcast(l0[None, :], codes)[0],
                                         ttgl.broadcast(l1[None, :], codes)[0], ttgl.broadcast(l2[None, :], codes)[0],
                                         ttgl.broadcast(l3[None, :], codes)[0]],
                dtype=ttgl.int32, is_pure=True, pack=1)
            where = (chunk[None, :] * 16 // GROUP) * rows_in_weight + rows[:, None]
            scale = ttgl.load(s_ptr + where, mask=everywhere, other=0).to(ttgl.float32)
            offset = ttgl.load(f_ptr + where, mask=everywhere, other=0).to(ttgl.float32)
            return sums.to(ttgl.float32) * (scale * power[None, :]) + offset * total[None, :]
        sums = ttgl.inline_asm_elementwise(
            DOT_ASM, "=r,l,l,l", [codes, ttgl.broadcast(l0[None, :], codes)[0], ttgl.broadcast(l1[None, :], codes)[0]],
            dtype=ttgl.int32, is_pure=True, pack=1)
        return sums.to(ttgl.float32) * power[None, :]

    @gluon.jit
    def _row_dots(x_ptr, q_ptr, s_ptr, f_ptr, up_q, up_s, up_f, rows, rows_in_weight, K: ttgl.constexpr,
                  GROUP: ttgl.constexpr, INT4: ttgl.constexpr, LIMBS_ASM: ttgl.constexpr, DOT_ASM: ttgl.constexpr,
                  layout: ttgl.constexpr, CHUNKS: ttgl.constexpr, GATED: ttgl.constexpr):
        """x . w[rows] for weight (q, s, f), and (GATED) x . up[rows], float32 (BLOCK_N,) each: CHUNKS chunks of
        the input a step, their limbs made once a thread for all its rows."""
        KC: ttgl.constexpr = K // 16 if INT4 else K // 8
        x64 = x_ptr.to(ttgl.pointer_type(ttgl.int64))
        accumulator = ttgl.zeros([rows.shape[0], CHUNKS], ttgl.float32, layout)
        up_accumulator = ttgl.zeros([rows.shape[0], CHUNKS], ttgl.float32, layout)
        for k0 in range(0, KC, CHUNKS):
            chunk = k0 + ttgl.arange(0, CHUNKS, layout=ttgl.SliceLayout(0, layout))
            inside = chunk < KC
            limbs = _chunk_limbs(x64, chunk, inside, INT4, LIMBS_ASM)
            accumulator += _chunk_terms(q_ptr, s_ptr, f_ptr, rows, rows_in_weight, chunk, inside, limbs, K, GROUP,
                                        INT4, DOT_ASM)
            if GATED:
                up_accumulator += _chunk_terms(up_q, up_s, up_f, rows, rows_in_weight, chunk, inside, limbs, K, GROUP,
                                               INT4, DOT_ASM)
        dots = ttgl.sum(accumulator, axis=1)
        up = ttgl.sum(up_accumulator, axis=1)
        if not INT4:  # int8: a scale a row
            dots = dots * ttgl.load(s_ptr + rows).to(ttgl.float32)
            if GATED:
                up = up * ttgl.load(up_s + rows).to(ttgl.float32)
        return dots, up

    @gluon.jit
    def row_kernel(x_ptr, out_ptr, q0, q1, q2, s0, s1, s2, f0, f1, f2, n0, n01, N, K: ttgl.constexpr,
                    GROUP: ttgl.constexpr, INT4: ttgl.constexpr, LIMBS_ASM: ttgl.constexpr, DOT_ASM: ttgl.constexpr,
                    R: ttgl.constexpr, C: ttgl.constexpr, WR: ttgl.constexpr, WC: ttgl.constexpr,
                    GATED: ttgl.constexpr = False):
        """out[block] = x . dequantized(w)[block] for the weight (0, 1 or 2) holding this program's R x WR outputs;
        GATED: out = silu(x @ w0.T) * (x @ w1.T), each product rounded to out's dtype as the unfused ops round."""
        layout: ttgl.constexpr = ttgl.BlockedLayout([R, C], [1, 32], [WR, WC], [1, 0])
        BLOCK_N: ttgl.constexpr = R * WR
        start = ttgl.program_id(0).to(ttgl.int64) * BLOCK_N
        q_ptr, s_ptr, f_ptr, first, rows_in_weight = stacked_weight(start, q0, q1, q2, s0, s1, s2, f0, f1, f2, n0,
                                                                    n01, N)
        along_rows: ttgl.constexpr = ttgl.SliceLayout(1, layout)
        rows = first + ttgl.arange(0, BLOCK_N, layout=along_rows)
        columns = start + ttgl.arange(0, BLOCK_N, layout=along_rows)
        dots, up = _row_dots(x_ptr, q_ptr, s_ptr, f_ptr, q1, s1, f1, rows, rows_in_weight, K, GROUP, INT4, LIMBS_ASM,
                             DOT_ASM, layout, C * 32 * WC, GATED)
        dtype = out_ptr.dtype.element_ty
        if GATED:  # each step rounded to out's dtype; the product of two such is exact in float32
            gate = dots.to(dtype).to(ttgl.float32)
            silu = (gate / (1.0 + ttgl.exp(-gate))).to(dtype).to(ttgl.float32)
            ttgl.store(out_ptr + columns, (silu * up.to(dtype).to(ttgl.float32)).to(dtype))
        else:
            ttgl.store(out_ptr + columns, dots.to(dtype))

    @gluon.jit
    def residual_norm_kernel(x_ptr, out_ptr, q_ptr, s_ptr, f_ptr, residual_ptr, norm_ptr, hidden_ptr, normed_ptr,
                              arrivals_ptr, eps, N, K: ttgl.constexpr, GROUP: ttgl.constexpr, INT4: ttgl.constexpr,
                              LIMBS_ASM: ttgl.constexpr, DOT_ASM: ttgl.constexpr, R: ttgl.constexpr,
                              C: ttgl.constexpr, WR: ttgl.constexpr, WC: ttgl.constexpr, NORM_BLOCK: ttgl.constexpr):
        """out = x @ dequantized(w).T (R x WR outputs a program), then, by the last program to finish, hidden =
        residual + out and normed = its RMSNorm times norm, rounded as decode_kernels.residual_norm_by_last rounds
        them (its steps, written again here: a Gluon kernel cannot call a Triton function). NORM_BLOCK: N rounded up
        to a power of two, at least MIN_NORM_BLOCK."""
        layout: ttgl.constexpr = ttgl.BlockedLayout([R, C], [1, 32], [WR, WC], [1, 0])
        BLOCK_N: ttgl.constexpr = R * WR
        rows = ttgl.program_id(0).to(ttgl.int64) * BLOCK_N + ttgl.arange(0, BLOCK_N,
                                                                        layout=ttgl.SliceLayout(1, layout))
        dots, _ = _row_dots(x_ptr, q_ptr, s_ptr, f_ptr, q_ptr, s_ptr, f_ptr, rows, N, K, GROUP, INT4, LIMBS_ASM,
                            DOT_ASM, layout, C * 32 * WC, False)
        ttgl.store(out_ptr + rows, dots.to(out_ptr.dtype.element_ty))
        _thread_barrier()  # every thread's stores precede the release
        last = ttgl.atomic_add(arrivals_ptr, 1, sem="acq_rel", scope="gpu") == ttgl.num_programs(0) - 1
        ttgl.store(arrivals_ptr, 0, mask=last)  # no program of this launch counts here again
        if last:
            norm_layout: ttgl.constexpr = ttgl.BlockedLayout([NORM_BLOCK // (32 * WR * WC)], [32], [WR * WC], [0])
            where = ttgl.arange(0, NORM_BLOCK, layout=norm_layout)
            inside = where < N
            out = ttgl.load(out_ptr + where, mask=inside, other=0, cache_modifier=".cg").to(ttgl.float32)
            hidden = (ttgl.load(residual_ptr + where, mask=inside, other=0).to(ttgl.float32) + out).to(
                hidden_ptr.dtype.element_ty)
            ttgl.store(hidden_ptr + where, hidden, mask=inside)
            as_float = hidden.to(ttgl.float32)
            normalised = (as_float * ttgl.rsqrt(ttgl.sum(as_float * as_float, axis=0) / N + eps)).to(hidden.dtype)
            scaled = ttgl.load(norm_ptr + where, mask=inside, other=0).to(ttgl.float32) * normalised.to(ttgl.float32)
            ttgl.store(normed_ptr + where, scaled.to(normed_ptr.dtype.element_ty), mask=inside)

else:  # quantized_decode_kernels.py times and launches them where they exist
    row_kernel = residual_norm_kernel = stacked_weight = None


def weight_offsets(weight) -> torch.Tensor:
    """What the kernels take as a quantized_decode_kernels.PackedWeight's offsets: int4's, or for int8 (which has
    none, and whose kernels never read them) its scales, standing in for the pointer."""
    return weight.scale if weight.offset is None else weight.offset


def stacked_arguments(weights: list) -> tuple:
    """The kernels' arguments for one to three stacked PackedWeights, as `stacked_weight` takes them: their codes,
    scales and offsets (each padded to three with the last weight), then the first weight's outputs and the first
    two's."""
    padded = weights + [weights[-1]] * (3 - len(weights))
    sizes = [weight.qweight.shape[0] for weight in weights]
    return (*(weight.qweight for weight in padded), *(weight.scale for weight in padded),
            *(weight_offsets(weight) for weight in padded), sizes[0], sum(sizes[:2]))


def row_grid(outputs: int):
    """The launch grid for `outputs` output columns: one program a tile's R x WR rows (its `meta`, as autotune
    chose it)."""
    return lambda meta: (outputs // (meta["R"] * meta["WR"]),)


def takes_row_kernel(x: torch.Tensor, *, bits: int) -> bool:
    """Whether these kernels serve a one-row product of x over `bits`-bit weights: a format routed here
    (ROW_KERNEL_BITS), Gluon at hand, a CUDA GPU of sm_80 or later (dp4a, 16-bit pair maxima; Triton's interpreter
    runs neither), a 16-bit input of whole chunks."""
    if (gluon is None or bits not in ROW_KERNEL_BITS or not x.is_cuda or x.dtype not in INPUT_FORMATS
            or x.shape[-1] % (16 if bits == 4 else 8)):
        return False
    return torch.cuda.get_device_capability(x.device) >= (8, 0)


@functools.cache
def kernel_constants(dtype: torch.dtype, bits: int) -> dict:
    """The kernels' PTX for this input dtype and weight format (made once: launches read it on every product)."""
    return {"LIMBS_ASM": limbs_asm(dtype, bits), "DOT_ASM": dot_asm(bits)}
