"""Attention of one new token per row over its KV cache (Triton), as a torch custom op: the decode step's attention.

A decode step's query is one token, so its attention is a matrix-vector product over the cache: it should take as long
as reading each row's keys and values once. SDPA's kernel on an H100 (cuDNN's, its queries tiled by 16) took 9.9 us a
layer for a batch-1 Llama-2-7B step over 512 slots, whose 8.4 MB of keys and values read in 2.8 us at the copy
bandwidth, and it reads every slot, filled or not. Here each (row, head) is split into slices of the cache
(flash-decoding), so that batch 1 fills the GPU too, and each row reads only up to the slot it has just written
(`ends`, read on the GPU, so a CUDA graph captured once serves every length); where there are several slices a second
small kernel combines their softmax partials. Grouped key/value heads are read in place (no `repeat_interleave` copy
of the cache). On an H100 (benchmarks/RESULTS.md, "A decode step's kernels") it is 0.97-1.6x SDPA's speed on full
caches (1.6x at batch 1) and 2.1-3.6x on caches a quarter filled.

Anything else (prompts, CPU, unusual head sizes) goes to SDPA, the reference the kernels are tested against
(tests/test_decode_attention.py, under Triton's interpreter on the CPU).
"""

import functools

import torch
import torch.nn.functional as F

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the op falls back to SDPA
    triton = None

try:
    from .decode_kernels import define_op
except ImportError:
    from decode_kernels import define_op

# Cache slots a program reads per step, and its warps: the least total time in an H100 sweep (attention_sweep.py)
BLOCK_SLOTS = 64
WARPS = 4
PROGRAMS_PER_SM = 4  # slices are cut so that (rows x heads x slices) gives every SM a few programs
HEAD_DIMS = (64, 128)  # head sizes the kernel takes (Llama, Mistral, Qwen2, SmolLM2); others go to SDPA

if triton is not None:

    @triton.jit
    def _slice_attention_kernel(q_ptr, k_ptr, v_ptr, mask_ptr, ends_ptr, out_ptr, best_ptr, total_ptr,
                                k_row, k_head, k_slot, v_row, v_head, v_slot, mask_row, length, slice_slots, scale,
                                HEADS: tl.constexpr, GROUPS: tl.constexpr, SLICES: tl.constexpr,
                                HEAD_DIM: tl.constexpr, BLOCK_S: tl.constexpr):
        """Softmax partials of one (row, head) over one slice of its cache: the slice's largest score, the sum of
        exp(score - largest) and the values weighted by it, float32; with one slice, the attention itself. Each of
        the BLOCK_S lanes keeps its own online softmax over the slots it reads (no reduction across lanes until
        the end), so a step reduces only along the head dimension."""
        row, head, piece = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        row64, kv_head = row.to(tl.int64), head // GROUPS
        end = tl.minimum(tl.load(ends_ptr + row), length)
        first = piece * slice_slots
        dims = tl.arange(0, HEAD_DIM)
        query = tl.load(q_ptr + (row64 * HEADS + head) * HEAD_DIM + dims).to(tl.float32) * scale
        best = tl.full((BLOCK_S,), -1e30, tl.float32)  # finite: lanes that attend no slot keep weights of 0, not NaN
        total = tl.zeros((BLOCK_S,), tl.float32)
        weighted = tl.zeros((BLOCK_S, HEAD_DIM), tl.float32)
        for start in range(first, tl.minimum(first + slice_slots, end), BLOCK_S):
            slots = start + tl.arange(0, BLOCK_S)
            attended = slots < end
            attended &= tl.load(mask_ptr + row64 * mask_row + slots, mask=attended, other=0) != 0
            keys = tl.load(k_ptr + row64 * k_row + kv_head * k_head + slots[:, None] * k_slot + dims[None, :],
                           mask=attended[:, None], other=0).to(tl.float32)
            values = tl.load(v_ptr + row64 * v_row + kv_head * v_head + slots[:, None] * v_slot + dims[None, :],
                             mask=attended[:, None], other=0).to(tl.float32)
            scores = tl.where(attended, tl.sum(keys * query[None, :], axis=1), -float("inf"))
            new_best = tl.maximum(best, scores)
            correction = tl.exp(best - new_best)
            weights = tl.exp(scores - new_best)
            total = total * correction + weights
            weighted = weighted * correction[:, None] + weights[:, None] * values
            best = new_best
        largest = tl.max(best, axis=0)
        rescale = tl.exp(best - largest)
        total = tl.sum(total * rescale, axis=0)
        weighted = tl.sum(weighted * rescale[:, None], axis=0)
        pair = row64 * HEADS + head
        if SLICES == 1:
            tl.store(out_ptr + pair * HEAD_DIM + dims, (weighted / total).to(out_ptr.dtype.element_ty))
        else:
            partial = pair * SLICES + piece
            tl.store(out_ptr + partial * HEAD_DIM + dims, weighted)
            tl.store(best_ptr + partial, largest)
            tl.store(total_ptr + partial, total)

    @triton.jit
    def _combine_slices_kernel(out_ptr, partial_ptr, best_ptr, total_ptr, SLICES: tl.constexpr,
                               SLICES_POW2: tl.constexpr, HEAD_DIM: tl.constexpr):
        """One (row, head)'s attention from its slices' partials, each rescaled to the largest score of all."""
        pair = tl.program_id(0).to(tl.int64)
        pieces = tl.arange(0, SLICES_POW2)
        present = pieces < SLICES
        dims = tl.arange(0, HEAD_DIM)
        best = tl.load(best_ptr + pair * SLICES + pieces, mask=present, other=-float("inf"))
        rescale = tl.exp(best - tl.max(best, axis=0))
        total = tl.sum(tl.load(total_ptr + pair * SLICES + pieces, mask=present, other=0) * rescale, axis=0)
        weighted = tl.load(partial_ptr + (pair * SLICES + pieces[:, None]) * HEAD_DIM + dims[None, :],
                           mask=present[:, None], other=0)
        result = tl.sum(weighted * rescale[:, None], axis=0) / total
        tl.store(out_ptr + pair * HEAD_DIM + dims, result.to(out_ptr.dtype.element_ty))


@functools.cache
def _multiprocessors(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def slices_for(pairs: int, length: int, multiprocessors: int) -> int:
    """How many slices each of `pairs` (row, head) cuts its `length` cache slots into: enough programs for every SM
    to hold a few, and no slice shorter than a step of BLOCK_SLOTS."""
    return max(1, min(triton.cdiv(PROGRAMS_PER_SM * multiprocessors, pairs), triton.cdiv(length, BLOCK_SLOTS)))


def launch_decode_attention(*, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor,
                            ends: torch.Tensor, scale: float, slices: int) -> torch.Tensor:
    """The kernels on query (rows, heads, 1, head_dim), key and value (rows, kv_heads, length, head_dim) with unit
    stride along head_dim, `mask` (rows, length) boolean, `ends` (rows,) the first slot not to attend."""
    rows, heads, _, head_dim = query.shape
    length = key.shape[2]
    slice_slots = triton.cdiv(triton.cdiv(length, slices), BLOCK_SLOTS) * BLOCK_SLOTS
    out = torch.empty_like(query)
    partials = out if slices == 1 else query.new_empty(rows, heads, slices, head_dim, dtype=torch.float32)
    best = query.new_empty(rows, heads, slices, dtype=torch.float32)
    total = torch.empty_like(best)
    _slice_attention_kernel[(rows, heads, slices)](
        query.contiguous(), key, value, mask.view(torch.uint8), ends, partials, best, total,
        *key.stride()[:3], *value.stride()[:3], mask.stride(0), length, slice_slots, scale,
        HEADS=heads, GROUPS=heads // key.shape[1], SLICES=slices, HEAD_DIM=head_dim, BLOCK_S=BLOCK_SLOTS,
        num_warps=WARPS,
    )
    if slices > 1:
        _combine_slices_kernel[(rows * heads,)](out, partials, best, total, SLICES=slices,
                                                SLICES_POW2=triton.next_power_of_2(slices), HEAD_DIM=head_dim,
                                                num_warps=4)
    return out


def reference_attention(*, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor,
                        ends: torch.Tensor, scale: float) -> torch.Tensor:
    """SDPA over the slots before `ends` that `mask` keeps (key/value heads repeated for grouped queries)."""
    slots = torch.arange(key.shape[2], device=key.device)
    attended = mask & (slots[None, :] < ends[:, None])
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=attended[:, None, None, :], scale=scale)


def _use_kernels(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor) -> bool:
    return (triton is not None and query.is_cuda and query.shape[2] == 1 and query.shape[3] in HEAD_DIMS
            and key.stride(3) == 1 and value.stride(3) == 1 and mask.dtype == torch.bool and mask.stride(1) == 1)


def _decode_attention_shape(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor,
                            ends: torch.Tensor, scale: float) -> torch.Tensor:
    return torch.empty_like(query)


@define_op("nextgpt::decode_attention", fake=_decode_attention_shape)
def decode_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor,
                     ends: torch.Tensor, scale: float) -> torch.Tensor:
    """Attention of query (rows, heads, 1, head_dim) over key and value (rows, kv_heads, length, head_dim): the slots
    before `ends` (rows,) that boolean `mask` (rows, length) keeps; (rows, heads, 1, head_dim)."""
    if not _use_kernels(query, key, value, mask):
        return reference_attention(query=query, key=key, value=value, mask=mask, ends=ends, scale=scale)
    slices = slices_for(query.shape[0] * query.shape[1], key.shape[2], _multiprocessors(query.device))
    return launch_decode_attention(query=query, key=key, value=value, mask=mask, ends=ends, scale=scale,
                                   slices=slices)


__all__ = ["decode_attention", "launch_decode_attention", "reference_attention", "slices_for"]
