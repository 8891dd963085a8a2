"""Decoding products over weight-only quantized projections (Triton), read straight from the packed bytes.

The layouts are weight_quantization.py's: int8 rows with one scale each, and int4 groups (eight codes per int32 word, in
planes: one shift of a group's words gives the codes of a contiguous run of inputs) with a scale and an offset each. A
decode step reads every weight once, so reading 1 byte (int8) or half a byte (int4) per weight instead of bf16's 2 is
what makes it faster; the kernels never write a dequantized weight. One launch serves up to three weights of the same
input width (q|k|v, gate|up), like decode_kernels.py.

- One row (batch-1 decoding): each program streams a few weight rows, dequantizing each weight in registers; int4
  takes one plane of its words at a time against a contiguous run of the input and sums code x input per group before
  the group's scale and offset apply. The block sizes, and whether codes become floats by conversion instructions or
  by bit tricks (`_int8_to_float`, `_int4_codes`), are whichever is faster on the GPU at hand among ROW_CONFIGS, timed
  on first use (Triton's autotune). Weights are loaded with `evict_first` (read once, they would push the input, scales
  and offsets out of L1). On an H100 the int4 kernels stream 1.2-1.7 TB/s, bound by the L1 cache (Nsight Compute),
  int8 2.3-2.9 TB/s (benchmarks/RESULTS.md, "Quantized fast decoding").
- Several rows (batched decoding, prompts): tiles of the weight are dequantized to the input's dtype in registers and
  multiplied on the tensor cores, int4 one plane of BLOCK_K / 8 inputs at a time.
Anything else (CPU, float32 inputs, sizes the kernels do not tile) dequantizes and calls `F.linear`, the reference the
kernels are tested against (tests/test_quantized_kernels.py, under Triton's interpreter on the CPU).
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the op falls back to dequantize + F.linear
    triton = None


ROW_MULTIPLE = 64  # every stacked weight's output size must be a multiple of this (the largest BLOCK_N below)
KERNEL_DTYPES = (torch.bfloat16, torch.float16)
MIN_BLOCK_K = 256  # the smallest int4 BLOCK_K below (several rows): int4 groups must tile it
# One row: the block sizes (rows x inputs a step, warps) and conversions autotune chooses among: the two fastest for
# each kind and shape of the 7B model in profile_decode.py's wider sweep (benchmarks/RESULTS.md).
ROW_CONFIGS = [{"BLOCK_M": 1, "BLOCK_N": n, "BLOCK_K": k, "BIT_CAST": bit_cast, "num_warps": warps}
               for n, k, warps, bit_cast in ((8, 1024, 8, True), (8, 1024, 8, False), (8, 512, 4, False),
                                             (8, 1024, 4, True), (4, 1024, 4, True), (4, 512, 2, True),
                                             (4, 1024, 4, False))]


class PackedWeight(NamedTuple):
    """A quantized projection as the fast decoder holds it: int8 `qweight` (N, K) with `scale` (1, N), or int32
    `qweight` (N, K / 8) with `scale` and `offset` (K / group, N)."""

    qweight: torch.Tensor
    scale: torch.Tensor
    offset: torch.Tensor | None


def weight_bits(qweight: torch.Tensor) -> int:
    return 8 if qweight.dtype == torch.int8 else 4


def group_size(weight: PackedWeight) -> int:
    """Inputs per scale: the row for int8, the group for int4."""
    columns = weight.qweight.shape[1] * (1 if weight_bits(weight.qweight) == 8 else 8)
    return columns // weight.scale.shape[0]


if triton is not None:

    @triton.jit
    def _int8_to_float(codes, BIT_CAST: tl.constexpr):
        """int8 codes (-127..127) as float32: by conversion instructions, or (BIT_CAST) by writing code + 128 into the
        mantissa of 2^23 and subtracting 2^23 + 128, integer and float operations that run at the full rate where the
        GPU converts integers at a fraction of it."""
        if BIT_CAST:
            return ((codes.to(tl.int32) + 128) | 0x4B000000).to(tl.float32, bitcast=True) - 8388736.0
        return codes.to(tl.float32)

    @triton.jit
    def _int4_codes(words, PLANE: tl.constexpr, BIT_CAST: tl.constexpr):
        """The codes held in bits 4 PLANE..4 PLANE + 3 of int32 `words` as float32: converted, or (BIT_CAST) shifted to
        the top of a float's mantissa, making 1 + code / 16 with one shift and one and-or, for which the caller takes
        16 * scale and offset - 16 * scale (`_int4_bit_cast_scales`)."""
        if BIT_CAST:
            SHIFT: tl.constexpr = 19 - 4 * PLANE
            if SHIFT >= 0:
                moved = words << SHIFT
            else:
                moved = words >> -SHIFT  # arithmetic shift: the sign bits fall outside the mask
            return ((moved & 0x780000) | 0x3F800000).to(tl.float32, bitcast=True)
        return ((words >> 4 * PLANE) & 0xF).to(tl.float32)

    @triton.jit
    def _int4_bit_cast_scales(scale, offset, BIT_CAST: tl.constexpr):
        """The scale and offset that turn `_int4_codes` into weights: as stored, or for codes read as 1 + code / 16."""
        if BIT_CAST:
            return 16.0 * scale, offset - 16.0 * scale
        return scale, offset

    @triton.jit
    def _quantized_kernel(x_ptr, out_ptr, q0, q1, q2, s0, s1, s2, f0, f1, f2, n0, n01, M, N,
                          K: tl.constexpr, GROUP: tl.constexpr, INT4: tl.constexpr, BLOCK_M: tl.constexpr,
                          BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BIT_CAST: tl.constexpr):
        """out[:, block] = x @ dequantized(w).T for the weight (0, 1 or 2) holding this program's BLOCK_N output
        columns; row blocks never straddle two weights. `f*` (offsets) are only read for int4. One row: BLOCK_K
        inputs a step on the CUDA cores; several rows: on the tensor cores, int4 one plane of BLOCK_K / 8 inputs at a
        time. BIT_CAST: how codes become floats (`_int8_to_float`, `_int4_codes`)."""
        start = tl.program_id(0).to(tl.int64) * BLOCK_N
        if start < n0:
            q_ptr, s_ptr, f_ptr, first, rows_in_weight = q0, s0, f0, start, n0
        elif start < n01:
            q_ptr, s_ptr, f_ptr, first, rows_in_weight = q1, s1, f1, start - n0, n01 - n0
        else:
            q_ptr, s_ptr, f_ptr, first, rows_in_weight = q2, s2, f2, start - n01, N - n01
        rows = first + tl.arange(0, BLOCK_N)  # weight rows
        columns = start + tl.arange(0, BLOCK_N)  # output columns
        m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
        GROUPS: tl.constexpr = K // GROUP
        WORDS: tl.constexpr = GROUP // 8  # int32 words of one int4 group; plane i of word j: input i * WORDS + j
        STEP_GROUPS: tl.constexpr = BLOCK_K // GROUP
        if INT4 and BLOCK_M == 1:
            words = tl.arange(0, WORDS)
            accumulator = tl.zeros((BLOCK_N, STEP_GROUPS, WORDS), dtype=tl.float32)
            for k0 in range(0, K, BLOCK_K):
                groups = k0 // GROUP + tl.arange(0, STEP_GROUPS)
                inside = groups[None, :] < GROUPS
                word = groups[None, :, None] * WORDS + words[None, None, :]  # (1, groups, words)
                # each weight is read once: evict_first keeps L1 for the input, scales and offsets (+8-20% on H100)
                packed = tl.load(q_ptr + rows[:, None, None] * (K // 8) + word, mask=inside[:, :, None], other=0,
                                 eviction_policy="evict_first")
                where = groups[None, :] * rows_in_weight + rows[:, None]  # (rows, groups), group-major storage
                scale = tl.load(s_ptr + where, mask=inside, other=0).to(tl.float32)[:, :, None]
                offset = tl.load(f_ptr + where, mask=inside, other=0).to(tl.float32)[:, :, None]
                scale, offset = _int4_bit_cast_scales(scale, offset, BIT_CAST)
                first_input = groups[None, :, None] * GROUP + words[None, None, :]
                # sum(x * (code * scale + offset)) over a group = scale * sum(x * code) + offset * sum(x): one
                # multiply-add per weight, the inputs' sums shared by all rows
                products = tl.zeros((BLOCK_N, STEP_GROUPS, WORDS), dtype=tl.float32)
                inputs = tl.zeros((1, STEP_GROUPS, WORDS), dtype=tl.float32)
                for plane in tl.static_range(8):
                    x = tl.load(x_ptr + first_input + plane * WORDS, mask=inside[:, :, None], other=0).to(tl.float32)
                    products += _int4_codes(packed, plane, BIT_CAST) * x
                    inputs += x
                accumulator += products * scale + inputs * offset
            tl.store(out_ptr + columns, tl.sum(tl.sum(accumulator, axis=2), axis=1).to(out_ptr.dtype.element_ty))
        elif INT4:
            accumulator = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            step_words = tl.arange(0, BLOCK_K // 8)  # the step's words, group after group
            for k0 in range(0, K, BLOCK_K):
                groups = k0 // GROUP + step_words // WORDS
                inside = groups < GROUPS
                packed = tl.load(q_ptr + rows[:, None] * (K // 8) + k0 // 8 + step_words[None, :],
                                 mask=inside[None, :], other=0)
                where = groups[None, :] * rows_in_weight + rows[:, None]  # one scale per word: its group's
                scale = tl.load(s_ptr + where, mask=inside[None, :], other=0).to(tl.float32)
                offset = tl.load(f_ptr + where, mask=inside[None, :], other=0).to(tl.float32)
                scale, offset = _int4_bit_cast_scales(scale, offset, BIT_CAST)
                first_input = m[:, None] * K + groups[None, :] * GROUP + (step_words % WORDS)[None, :]
                for plane in tl.static_range(8):
                    x = tl.load(x_ptr + first_input + plane * WORDS, mask=(m[:, None] < M) & inside[None, :], other=0)
                    weights = (_int4_codes(packed, plane, BIT_CAST) * scale + offset).to(x.dtype)
                    accumulator += tl.dot(x, tl.trans(weights))
            tl.store(out_ptr + m[:, None] * N + columns[None, :], accumulator.to(out_ptr.dtype.element_ty),
                     mask=m[:, None] < M)
        else:
            if BLOCK_M == 1:
                accumulator = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
            else:
                accumulator = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            for k0 in range(0, K, BLOCK_K):
                inputs = k0 + tl.arange(0, BLOCK_K)
                inside = inputs < K
                codes = tl.load(q_ptr + rows[:, None] * K + inputs[None, :], mask=inside[None, :], other=0,
                                eviction_policy="evict_first")
                if BLOCK_M == 1:
                    x = tl.load(x_ptr + inputs, mask=inside, other=0).to(tl.float32)
                    accumulator += _int8_to_float(codes, BIT_CAST) * x[None, :]
                else:
                    x = tl.load(x_ptr + m[:, None] * K + inputs[None, :], mask=(m[:, None] < M) & inside[None, :],
                                other=0)
                    # |codes| <= 127: exact in bf16
                    accumulator += tl.dot(x, tl.trans(_int8_to_float(codes, BIT_CAST).to(x.dtype)))
            row_scale = tl.load(s_ptr + rows).to(tl.float32)
            if BLOCK_M == 1:
                tl.store(out_ptr + columns, (tl.sum(accumulator, axis=1) * row_scale).to(out_ptr.dtype.element_ty))
            else:
                tl.store(out_ptr + m[:, None] * N + columns[None, :],
                         (accumulator * row_scale[None, :]).to(out_ptr.dtype.element_ty), mask=m[:, None] < M)

    # One row: the block sizes and how codes become floats are chosen by timing on first use per weight shape.
    _row_kernel = triton.autotune(
        [triton.Config({key: value for key, value in config.items() if key != "num_warps"},
                       num_warps=config["num_warps"]) for config in ROW_CONFIGS],
        key=["N", "K", "INT4"],
    )(_quantized_kernel)


def kernel_config(rows: int, bits: int) -> dict:
    """Tensor-core tiles for several rows; for one row, a configuration that works (CUDA times its own: autotune)."""
    if rows == 1:
        return {"BLOCK_M": 1, "BLOCK_N": 4, "BLOCK_K": 512, "BIT_CAST": bits == 4, "num_warps": 4}
    return {"BLOCK_M": 16 if rows <= 16 else 32 if rows <= 32 else 64, "BLOCK_N": 64,
            "BLOCK_K": MIN_BLOCK_K if bits == 4 else 128, "BIT_CAST": bits == 4, "num_warps": 4}


def launch_quantized_kernel(x: torch.Tensor, weights: list[PackedWeight], config: dict | None = None) -> torch.Tensor:
    """Runs the kernel (x: (M, K), contiguous). `config`: block sizes (tests, tuning); by default one row is tuned by
    timing and several rows take `kernel_config`'s tiles."""
    bits, group = weight_bits(weights[0].qweight), group_size(weights[0])
    sizes = [weight.qweight.shape[0] for weight in weights]
    padded = weights + [weights[-1]] * (3 - len(weights))
    out = x.new_empty(x.shape[0], sum(sizes))
    arguments = (x, out, *(weight.qweight for weight in padded), *(weight.scale for weight in padded),
                 *((weight.offset if bits == 4 else weight.scale) for weight in padded),
                 sizes[0], sum(sizes[:2]), x.shape[0], sum(sizes), x.shape[1], group, bits == 4)
    if config is None and x.shape[0] == 1:
        _row_kernel[lambda meta: (sum(sizes) // meta["BLOCK_N"], 1)](*arguments)
        return out
    config = config or kernel_config(x.shape[0], bits)
    grid = (sum(sizes) // config["BLOCK_N"], triton.cdiv(x.shape[0], config["BLOCK_M"]))
    _quantized_kernel[grid](*arguments, **config)
    return out


