"""Decoding products over weight-only quantized projections (Triton), read straight from the packed bytes.

The layouts are weight_quantization.py's: int8 rows with one scale each, and int4 groups (two codes a byte, even input
in the low nibble) with a scale and an offset each. A decode step reads every weight once, so reading 1 byte (int8)
or half a byte (int4) per weight instead of bf16's 2 is what makes it faster; the kernels never write a dequantized
weight. One launch serves up to three weights of the same input width (q|k|v, gate|up), like decode_kernels.py.

- One row (batch-1 decoding): each program streams a few weight rows, dequantizing each weight in registers; the
  block sizes, and whether codes become floats by conversion instructions or by bit tricks (`_codes_to_float`), are
  whichever is faster on the GPU at hand, timed on first use (Triton's autotune). On the H100 the int4 kernel runs
  at about 0.9 TB/s and the bit tricks did not make it faster (autotune keeps the conversions there; int8 takes
  either, by shape): its limit lies elsewhere (benchmarks/RESULTS.md, "Quantized fast decoding").
- Several rows (batched decoding, prompts): tiles of the weight are dequantized to the input's dtype in registers and
  multiplied on the tensor cores, one int4 group at a time.
Anything else (CPU, float32 inputs, sizes the kernels do not tile) dequantizes and calls `F.linear`, the reference the
kernels are tested against (tests/test_weight_quantization.py, under Triton's interpreter on the CPU).
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the op falls back to dequantize + F.linear
    triton = None

try:
    from .decode_kernels import define_op
    from .weight_quantization import dequantize
except ImportError:
    from decode_kernels import define_op
    from weight_quantization import dequantize

ROW_MULTIPLE = 64  # every stacked weight's output size must be a multiple of this (the largest BLOCK_N below)
KERNEL_DTYPES = (torch.bfloat16, torch.float16)
MIN_BLOCK_K = 512  # the smallest BLOCK_K below: int4 groups must tile it


class PackedWeight(NamedTuple):
    """A quantized projection as the fast decoder holds it: int8 `qweight` (N, K) with `scale` (1, N), or uint8
    `qweight` (N, K / 2) with `scale` and `offset` (K / group, N)."""

    qweight: torch.Tensor
    scale: torch.Tensor
    offset: torch.Tensor | None


def weight_bits(qweight: torch.Tensor) -> int:
    return 8 if qweight.dtype == torch.int8 else 4


def group_size(weight: PackedWeight) -> int:
    """Inputs per scale: the row for int8, the group for int4."""
    columns = weight.qweight.shape[1] * (1 if weight_bits(weight.qweight) == 8 else 2)
    return columns // weight.scale.shape[0]


if triton is not None:

    @triton.jit
    def _codes_to_float(codes, SIGNED: tl.constexpr, BIT_CAST: tl.constexpr):
        """int4 codes (0..15) or int8 codes (-127..127, SIGNED) as float32: by conversion instructions, or (BIT_CAST)
        by writing them, made non-negative, into the mantissa of 2^23 and subtracting, integer and float operations
        that run at the full rate where the GPU converts integers at a fraction of it."""
        if BIT_CAST:
            if SIGNED:  # 2^23 + 128 + code
                floats = ((codes.to(tl.int32) + 128) | 0x4B000000).to(tl.float32, bitcast=True) - 8388736.0
            else:
                floats = (codes.to(tl.int32) | 0x4B000000).to(tl.float32, bitcast=True) - 8388608.0
        else:
            floats = codes.to(tl.float32)
        return floats

    @triton.jit
    def _quantized_kernel(x_ptr, out_ptr, q0, q1, q2, s0, s1, s2, f0, f1, f2, n0, n01, M, N,
                          K: tl.constexpr, GROUP: tl.constexpr, INT4: tl.constexpr, BLOCK_M: tl.constexpr,
                          BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BIT_CAST: tl.constexpr):
        """out[:, block] = x @ dequantized(w).T for the weight (0, 1 or 2) holding this program's BLOCK_N output
        columns; row blocks never straddle two weights. `f*` (offsets) are only read for int4. One row: BLOCK_K
        inputs a step; several rows: one int4 group (or BLOCK_K int8 inputs) a step, on the tensor cores. BIT_CAST:
        how codes become floats (`_codes_to_float`)."""
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
        HALF_GROUP: tl.constexpr = GROUP // 2  # bytes of one int4 group
        if INT4:
            pairs = tl.arange(0, HALF_GROUP)  # byte j of a group holds its inputs 2j (low nibble) and 2j + 1 (high)
        if INT4 and BLOCK_M == 1:
            STEP_GROUPS: tl.constexpr = BLOCK_K // GROUP
            accumulator = tl.zeros((BLOCK_N, STEP_GROUPS, HALF_GROUP), dtype=tl.float32)
            for k0 in range(0, K, BLOCK_K):
                groups = k0 // GROUP + tl.arange(0, STEP_GROUPS)
                inside = groups < GROUPS
                byte = groups[None, :, None] * HALF_GROUP + pairs[None, None, :]  # (1, groups, bytes)
                packed = tl.load(q_ptr + rows[:, None, None] * (K // 2) + byte, mask=inside[None, :, None], other=0)
                low = _codes_to_float(packed & 0xF, False, BIT_CAST)
                high = _codes_to_float(packed >> 4, False, BIT_CAST)
                x_even = tl.load(x_ptr + 2 * byte, mask=inside[None, :, None], other=0).to(tl.float32)
                x_odd = tl.load(x_ptr + 2 * byte + 1, mask=inside[None, :, None], other=0).to(tl.float32)
                where = groups[None, :] * rows_in_weight + rows[:, None]  # (rows, groups), group-major storage
                scale = tl.load(s_ptr + where, mask=inside[None, :], other=0).to(tl.float32)[:, :, None]
                offset = tl.load(f_ptr + where, mask=inside[None, :], other=0).to(tl.float32)[:, :, None]
                accumulator += (low * scale + offset) * x_even + (high * scale + offset) * x_odd
            tl.store(out_ptr + columns, tl.sum(tl.sum(accumulator, axis=2), axis=1).to(out_ptr.dtype.element_ty))
        elif INT4:
            accumulator = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            for group in range(0, GROUPS):
                packed = tl.load(q_ptr + rows[:, None] * (K // 2) + group * HALF_GROUP + pairs[None, :])
                low = _codes_to_float(packed & 0xF, False, BIT_CAST)
                high = _codes_to_float(packed >> 4, False, BIT_CAST)
                scale = tl.load(s_ptr + group * rows_in_weight + rows).to(tl.float32)[:, None]
                offset = tl.load(f_ptr + group * rows_in_weight + rows).to(tl.float32)[:, None]
                x_where = x_ptr + m[:, None] * K + group * GROUP + 2 * pairs[None, :]
                x_even = tl.load(x_where, mask=m[:, None] < M, other=0)
                x_odd = tl.load(x_where + 1, mask=m[:, None] < M, other=0)
                accumulator += tl.dot(x_even, tl.trans((low * scale + offset).to(x_even.dtype)))
                accumulator += tl.dot(x_odd, tl.trans((high * scale + offset).to(x_even.dtype)))
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
                codes = tl.load(q_ptr + rows[:, None] * K + inputs[None, :], mask=inside[None, :], other=0)
                if BLOCK_M == 1:
                    x = tl.load(x_ptr + inputs, mask=inside, other=0).to(tl.float32)
                    accumulator += _codes_to_float(codes, True, BIT_CAST) * x[None, :]
                else:
                    x = tl.load(x_ptr + m[:, None] * K + inputs[None, :], mask=(m[:, None] < M) & inside[None, :],
                                other=0)
                    # |codes| <= 127: exact in bf16
                    accumulator += tl.dot(x, tl.trans(_codes_to_float(codes, True, BIT_CAST).to(x.dtype)))
            row_scale = tl.load(s_ptr + rows).to(tl.float32)
            if BLOCK_M == 1:
                tl.store(out_ptr + columns, (tl.sum(accumulator, axis=1) * row_scale).to(out_ptr.dtype.element_ty))
            else:
                tl.store(out_ptr + m[:, None] * N + columns[None, :],
                         (accumulator * row_scale[None, :]).to(out_ptr.dtype.element_ty), mask=m[:, None] < M)

    # One row: the block sizes and how codes become floats are chosen by timing on first use per weight shape.
    _row_kernel = triton.autotune(
        [triton.Config({"BLOCK_M": 1, "BLOCK_N": n, "BLOCK_K": k, "BIT_CAST": bit_cast}, num_warps=warps)
         for n, k, warps in ((4, 512, 4), (4, 1024, 4), (8, 512, 4), (8, 1024, 8)) for bit_cast in (False, True)],
        key=["N", "K", "INT4"],
    )(_quantized_kernel)


def kernel_config(rows: int, bits: int) -> dict:
    """Tensor-core tiles for several rows; for one row, a configuration that works (CUDA times its own: autotune)."""
    if rows == 1:
        return {"BLOCK_M": 1, "BLOCK_N": 4, "BLOCK_K": 512, "BIT_CAST": False, "num_warps": 4}
    return {"BLOCK_M": 16 if rows <= 16 else 32, "BLOCK_N": 64 if bits == 4 else 32, "BLOCK_K": 128,
            "BIT_CAST": False, "num_warps": 4}


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


def kernel_tiles(weights: list[PackedWeight]) -> bool:
    """Whether the kernel tiles these weights: one format, row counts of whole blocks, int4 groups within a block."""
    formats = {(weight_bits(weight.qweight), group_size(weight), weight.qweight.shape[1]) for weight in weights}
    return (
        len(formats) == 1 and (weight_bits(weights[0].qweight) == 8 or MIN_BLOCK_K % group_size(weights[0]) == 0)
        and all(weight.qweight.shape[0] % ROW_MULTIPLE == 0 and weight.qweight.is_contiguous() for weight in weights)
    )


def _use_kernel(x: torch.Tensor, weights: list[PackedWeight]) -> bool:
    return triton is not None and x.is_cuda and x.dtype in KERNEL_DTYPES and kernel_tiles(weights)


def reference_product(x: torch.Tensor, weights: list[PackedWeight]) -> torch.Tensor:
    """Dequantize, then `F.linear`: what the kernel computes, the slow way."""
    products = []
    for weight in weights:
        full = dequantize(qweight=weight.qweight, scale=weight.scale, offset=weight.offset,
                          bits=weight_bits(weight.qweight), group_size=group_size(weight))
        products.append(F.linear(x, full.to(x.dtype)))
    return torch.cat(products, dim=-1)


def _quantized_stacked_product_shape(x: torch.Tensor, qweights: list[torch.Tensor], scales: list[torch.Tensor],
                                     offsets: list[torch.Tensor]) -> torch.Tensor:
    return x.new_empty(*x.shape[:-1], sum(q.shape[0] for q in qweights))


@define_op("nextgpt::quantized_stacked_product", fake=_quantized_stacked_product_shape)
def quantized_stacked_product(x: torch.Tensor, qweights: list[torch.Tensor], scales: list[torch.Tensor],
                              offsets: list[torch.Tensor]) -> torch.Tensor:
    """`torch.cat([x @ dequantized(w).T for w in weights], -1)` for one to three quantized weights of the same input
    width; `offsets` is empty for int8."""
    weights = [PackedWeight(q, s, offsets[index] if offsets else None) for index, (q, s) in
               enumerate(zip(qweights, scales))]
    if not (1 <= len(weights) <= 3 and _use_kernel(x, weights)):
        return reference_product(x, weights)
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    return launch_quantized_kernel(flat, weights).view(*x.shape[:-1], -1)


def quantized_product(x: torch.Tensor, weights: list[PackedWeight]) -> torch.Tensor:
    """The op over PackedWeights."""
    offsets = [weight.offset for weight in weights] if weights[0].offset is not None else []
    return quantized_stacked_product(x, [w.qweight for w in weights], [w.scale for w in weights], offsets)


__all__ = ["PackedWeight", "launch_quantized_kernel", "quantized_product", "reference_product"]
