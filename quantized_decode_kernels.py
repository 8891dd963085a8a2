"""Decoding products over weight-only quantized projections (Triton), read straight from the packed bytes.

The layouts are weight_quantization.py's: int8 rows with one scale each, and int4 groups (two codes a byte, even input
in the low nibble) with a scale and an offset each. A decode step reads every weight once, so reading 1 byte (int8)
or half a byte (int4) per weight instead of bf16's 2 is what makes it faster; the kernels never write a dequantized
weight. One launch serves up to three weights of the same input width (q|k|v, gate|up), like decode_kernels.py.

- One row (batch-1 decoding): each program takes a few weight rows; int4 codes are multiplied by the input within
  each group first and scaled once per group, `scale * sum(code * x) + offset * sum(x)`.
- Several rows (batched decoding, prompts): tiles of the weight are dequantized to the input's dtype in registers and
  multiplied on the tensor cores.
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
    from .weight_quantization import dequantize
except ImportError:
    from weight_quantization import dequantize

ROW_MULTIPLE = 32  # every stacked weight's output size must be a multiple of this (the largest BLOCK_N below)
KERNEL_DTYPES = (torch.bfloat16, torch.float16)
MIN_BLOCK_K = 128  # the smallest BLOCK_K below: int4 groups must tile it


class PackedWeight(NamedTuple):
    """A quantized projection as the fast decoder holds it: int8 `qweight` (N, K) with `scale` (N, 1), or uint8
    `qweight` (N, K / 2) with `scale` and `offset` (N, K / group)."""

    qweight: torch.Tensor
    scale: torch.Tensor
    offset: torch.Tensor | None


def weight_bits(qweight: torch.Tensor) -> int:
    return 8 if qweight.dtype == torch.int8 else 4


def group_size(weight: PackedWeight) -> int:
    """Inputs per scale: the row for int8, the group for int4."""
    columns = weight.qweight.shape[1] * (1 if weight_bits(weight.qweight) == 8 else 2)
    return columns // weight.scale.shape[1]


if triton is not None:

    @triton.jit
    def _quantized_kernel(x_ptr, out_ptr, q0, q1, q2, s0, s1, s2, f0, f1, f2, n0, n01, M, N,
                          K: tl.constexpr, GROUP: tl.constexpr, INT4: tl.constexpr,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        """out[:, block] = x @ dequantized(w).T for the weight (0, 1 or 2) holding this program's BLOCK_N output
        columns; row blocks never straddle two weights. `f*` (offsets) are only read for int4."""
        start = tl.program_id(0).to(tl.int64) * BLOCK_N
        if start < n0:
            q_ptr, s_ptr, f_ptr, first = q0, s0, f0, start
        elif start < n01:
            q_ptr, s_ptr, f_ptr, first = q1, s1, f1, start - n0
        else:
            q_ptr, s_ptr, f_ptr, first = q2, s2, f2, start - n01
        rows = first + tl.arange(0, BLOCK_N)  # weight rows
        columns = start + tl.arange(0, BLOCK_N)  # output columns
        m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
        GROUPS: tl.constexpr = K // GROUP
        if INT4:
            HALF: tl.constexpr = BLOCK_K // 2
            BLOCK_GROUPS: tl.constexpr = BLOCK_K // GROUP
            pairs = tl.arange(0, HALF)  # byte j holds inputs 2j (low nibble) and 2j + 1 (high nibble)
            if BLOCK_M == 1:
                accumulator = tl.zeros((BLOCK_N, BLOCK_GROUPS), dtype=tl.float32)
            else:
                accumulator = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            for k0 in range(0, K, BLOCK_K):
                even = k0 + 2 * pairs
                inside = even < K
                packed = tl.load(q_ptr + rows[:, None] * (K // 2) + (k0 // 2 + pairs)[None, :], mask=inside[None, :],
                                 other=0)
                low, high = (packed & 0xF).to(tl.float32), (packed >> 4).to(tl.float32)
                groups = k0 // GROUP + tl.arange(0, BLOCK_GROUPS)
                group_inside = groups < GROUPS
                where = rows[:, None] * GROUPS + groups[None, :]
                scale = tl.load(s_ptr + where, mask=group_inside[None, :], other=0).to(tl.float32)
                offset = tl.load(f_ptr + where, mask=group_inside[None, :], other=0).to(tl.float32)
                if BLOCK_M == 1:
                    x_even = tl.load(x_ptr + even, mask=inside, other=0).to(tl.float32)
                    x_odd = tl.load(x_ptr + even + 1, mask=inside, other=0).to(tl.float32)
                    codes_x = tl.reshape(low * x_even[None, :] + high * x_odd[None, :],
                                         (BLOCK_N, BLOCK_GROUPS, GROUP // 2))
                    x_sums = tl.sum(tl.reshape(x_even + x_odd, (BLOCK_GROUPS, GROUP // 2)), axis=1)
                    accumulator += tl.sum(codes_x, axis=2) * scale + offset * x_sums[None, :]
                else:
                    x_where = x_ptr + m[:, None] * K + even[None, :]
                    x_mask = (m[:, None] < M) & inside[None, :]
                    x_even = tl.load(x_where, mask=x_mask, other=0)
                    x_odd = tl.load(x_where + 1, mask=x_mask, other=0)
                    scale3, offset3 = scale[:, :, None], offset[:, :, None]
                    w_low = tl.reshape(tl.reshape(low, (BLOCK_N, BLOCK_GROUPS, GROUP // 2)) * scale3 + offset3,
                                       (BLOCK_N, HALF)).to(x_even.dtype)
                    w_high = tl.reshape(tl.reshape(high, (BLOCK_N, BLOCK_GROUPS, GROUP // 2)) * scale3 + offset3,
                                        (BLOCK_N, HALF)).to(x_even.dtype)
                    accumulator += tl.dot(x_even, tl.trans(w_low)) + tl.dot(x_odd, tl.trans(w_high))
            if BLOCK_M == 1:
                result = tl.sum(accumulator, axis=1)
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
                    accumulator += codes.to(tl.float32) * x[None, :]
                else:
                    x = tl.load(x_ptr + m[:, None] * K + inputs[None, :], mask=(m[:, None] < M) & inside[None, :],
                                other=0)
                    accumulator += tl.dot(x, tl.trans(codes.to(x.dtype)))  # |codes| <= 127: exact in bf16
            row_scale = tl.load(s_ptr + rows).to(tl.float32)
            if BLOCK_M == 1:
                result = tl.sum(accumulator, axis=1) * row_scale
            else:
                accumulator = accumulator * row_scale[None, :]
        if BLOCK_M == 1:
            tl.store(out_ptr + columns, result.to(out_ptr.dtype.element_ty))
        else:
            tl.store(out_ptr + m[:, None] * N + columns[None, :], accumulator.to(out_ptr.dtype.element_ty),
                     mask=m[:, None] < M)


def kernel_config(rows: int, bits: int) -> dict:
    """Block sizes and warps: a few weight rows per program for one input row (many programs keep every SM
    streaming), tensor-core tiles for several."""
    if rows == 1:
        return {"BLOCK_M": 1, "BLOCK_N": 8 if bits == 4 else 4, "BLOCK_K": 1024 if bits == 4 else 512,
                "num_warps": 4}
    return {"BLOCK_M": 16 if rows <= 16 else 32, "BLOCK_N": 32, "BLOCK_K": 128, "num_warps": 4}


def launch_quantized_kernel(x: torch.Tensor, weights: list[PackedWeight], config: dict | None = None) -> torch.Tensor:
    """Runs the kernel (x: (M, K), contiguous); `config` overrides `kernel_config` (tests, tuning)."""
    bits, group = weight_bits(weights[0].qweight), group_size(weights[0])
    sizes = [weight.qweight.shape[0] for weight in weights]
    config = config or kernel_config(x.shape[0], bits)
    padded = weights + [weights[-1]] * (3 - len(weights))
    out = x.new_empty(x.shape[0], sum(sizes))
    grid = (sum(sizes) // config["BLOCK_N"], triton.cdiv(x.shape[0], config["BLOCK_M"]))
    _quantized_kernel[grid](
        x, out, *(weight.qweight for weight in padded), *(weight.scale for weight in padded),
        *((weight.offset if bits == 4 else weight.scale) for weight in padded),
        sizes[0], sum(sizes[:2]), x.shape[0], sum(sizes), x.shape[1], group, bits == 4, **config,
    )
    return out


def _use_kernel(x: torch.Tensor, weights: list[PackedWeight]) -> bool:
    """On CUDA, half-precision inputs, weights of one format whose sizes the kernel tiles."""
    formats = {(weight_bits(weight.qweight), group_size(weight), weight.qweight.shape[1]) for weight in weights}
    return (
        triton is not None and x.is_cuda and x.dtype in KERNEL_DTYPES and len(formats) == 1
        and all(weight.qweight.shape[0] % ROW_MULTIPLE == 0 and weight.qweight.is_contiguous() for weight in weights)
        and (weight_bits(weights[0].qweight) == 8 or MIN_BLOCK_K % group_size(weights[0]) == 0)
    )


def reference_product(x: torch.Tensor, weights: list[PackedWeight]) -> torch.Tensor:
    """Dequantize, then `F.linear`: what the kernel computes, the slow way."""
    products = []
    for weight in weights:
        full = dequantize(qweight=weight.qweight, scale=weight.scale, offset=weight.offset,
                          bits=weight_bits(weight.qweight), group_size=group_size(weight))
        products.append(F.linear(x, full.to(x.dtype)))
    return torch.cat(products, dim=-1)


@torch.library.custom_op("nextgpt::quantized_stacked_product", mutates_args=())
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


@quantized_stacked_product.register_fake
def _(x, qweights, scales, offsets):
    return x.new_empty(*x.shape[:-1], sum(q.shape[0] for q in qweights))


def quantized_product(x: torch.Tensor, weights: list[PackedWeight]) -> torch.Tensor:
    """The op over PackedWeights."""
    offsets = [weight.offset for weight in weights] if weights[0].offset is not None else []
    return quantized_stacked_product(x, [w.qweight for w in weights], [w.scale for w in weights], offsets)


__all__ = ["PackedWeight", "launch_quantized_kernel", "quantized_product", "reference_product"]
