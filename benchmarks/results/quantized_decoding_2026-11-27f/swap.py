"""Experiment: weight rows as the product's M (swap AB): out^T (BLOCK_N, BLOCK_M) += dequantized(w) (BLOCK_N, BLOCK_K)
@ x^T (BLOCK_K, BLOCK_M) on the tensor cores, for one row (x padded to 16 rows) and several."""
import sys
import torch
import triton
import triton.language as tl
sys.path.insert(0, ".")
from quantized_decode_kernels import PackedWeight, weight_bits, group_size


@triton.jit
def _swapped_kernel(x_ptr, out_ptr, q0, q1, q2, s0, s1, s2, f0, f1, f2, n0, n01, M, N,
                    K: tl.constexpr, GROUP: tl.constexpr, INT4: tl.constexpr, BLOCK_M: tl.constexpr,
                    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, EVICT: tl.constexpr):
    start = tl.program_id(0).to(tl.int64) * BLOCK_N
    if start < n0:
        q_ptr, s_ptr, f_ptr, first, rows_in_weight = q0, s0, f0, start, n0
    elif start < n01:
        q_ptr, s_ptr, f_ptr, first, rows_in_weight = q1, s1, f1, start - n0, n01 - n0
    else:
        q_ptr, s_ptr, f_ptr, first, rows_in_weight = q2, s2, f2, start - n01, N - n01
    rows = first + tl.arange(0, BLOCK_N)
    columns = start + tl.arange(0, BLOCK_N)
    m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    GROUPS: tl.constexpr = K // GROUP
    WORDS: tl.constexpr = GROUP // 8
    STEP_GROUPS: tl.constexpr = BLOCK_K // GROUP
    accumulator = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        inputs = k0 + tl.arange(0, BLOCK_K)
        x = tl.load(x_ptr + m[None, :] * K + inputs[:, None], mask=(m[None, :] < M) & (inputs[:, None] < K), other=0)
        if INT4:
            words = tl.arange(0, WORDS)
            planes = tl.arange(0, 8)
            groups = k0 // GROUP + tl.arange(0, STEP_GROUPS)
            inside = groups[None, :] < GROUPS
            word = groups[None, :, None] * WORDS + words[None, None, :]
            if EVICT:
                packed = tl.load(q_ptr + rows[:, None, None] * (K // 8) + word, mask=inside[:, :, None], other=0,
                                 eviction_policy="evict_first")
            else:
                packed = tl.load(q_ptr + rows[:, None, None] * (K // 8) + word, mask=inside[:, :, None], other=0)
            where = groups[None, :] * rows_in_weight + rows[:, None]
            scale = tl.load(s_ptr + where, mask=inside, other=0).to(tl.float32)[:, :, None, None]
            offset = tl.load(f_ptr + where, mask=inside, other=0).to(tl.float32)[:, :, None, None]
            codes = (packed[:, :, None, :] >> (4 * planes)[None, None, :, None]) & 0xF
            weights = tl.reshape(codes.to(tl.float32) * scale + offset, (BLOCK_N, BLOCK_K))
        else:
            if EVICT:
                codes = tl.load(q_ptr + rows[:, None] * K + inputs[None, :], mask=inputs[None, :] < K, other=0,
                                eviction_policy="evict_first")
            else:
                codes = tl.load(q_ptr + rows[:, None] * K + inputs[None, :], mask=inputs[None, :] < K, other=0)
            weights = codes.to(tl.float32)
        accumulator += tl.dot(weights.to(x.dtype), x)
    if not INT4:
        accumulator *= tl.load(s_ptr + rows).to(tl.float32)[:, None]
    tl.store(out_ptr + m[None, :] * N + columns[:, None], accumulator.to(out_ptr.dtype.element_ty), mask=m[None, :] < M)


def launch(x: torch.Tensor, weights: list, config: dict) -> torch.Tensor:
    bits, group = weight_bits(weights[0].qweight), group_size(weights[0])
    sizes = [weight.qweight.shape[0] for weight in weights]
    padded = weights + [weights[-1]] * (3 - len(weights))
    out = x.new_empty(x.shape[0], sum(sizes))
    config = dict(config)
    block_m = config.pop("BLOCK_M", max(16, triton.next_power_of_2(x.shape[0])))
    grid = (sum(sizes) // config["BLOCK_N"], triton.cdiv(x.shape[0], block_m))
    _swapped_kernel[grid](x, out, *(w.qweight for w in padded), *(w.scale for w in padded),
                          *((w.offset if bits == 4 else w.scale) for w in padded),
                          sizes[0], sum(sizes[:2]), x.shape[0], sum(sizes), x.shape[1], group, bits == 4,
                          BLOCK_M=block_m, **config)
    return out
