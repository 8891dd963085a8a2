"""Attention of one new token per row over its KV cache (Triton), as a torch custom op: the decode step's attention.

A decode step's query is one token, so its attention is a matrix-vector product over the cache: it should take as long
as reading each row's keys and values once. SDPA's kernel on an H100 (cuDNN's, its queries tiled by 16) took 9.9 us a
layer for a batch-1 Llama-2-7B step over 512 slots, whose 8.4 MB of keys and values read in 2.8 us at the copy
bandwidth, and it reads every slot, filled or not. Here each (row, head) is split into slices of the cache
(flash-decoding), so that batch 1 fills the GPU too, and each row reads only up to the slot it writes (`slots`, read
on the GPU, so a CUDA graph captured once serves every length); where there are several slices the last of a (row,
head)'s programs to finish combines their softmax partials. Grouped key/value heads are read in place (no
`repeat_interleave` copy of the cache). The same launch takes the new token's query, key and value as the q|k|v
product gives them: it applies the rotary embedding, writes the key and value into the cache and attends to them from
registers, where the unfused step spent two more kernels a layer (rotary and cache writes) and a third combining the
slices (benchmarks/RESULTS.md, "A decode step's kernels" and "The step's attention in one launch").

Anything else (prompts, CPU, unusual head sizes) goes to the same steps in torch ops with SDPA, the reference the
kernels are tested against (tests/test_decode_attention.py, under Triton's interpreter on the CPU).
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
    from .decode_kernels import arrival_counters, define_op, last_to_arrive
except ImportError:
    from decode_kernels import arrival_counters, define_op, last_to_arrive

# Cache slots a program reads per step, and its warps. Where the cache is cut into slices (small batches: short
# programs), 64 x 4, the least total time in an H100 sweep (attention_sweep.py); where each program reads a whole cache
# (large batches), 16 x 2: 64 x 4 spills its accumulator to memory there and two programs fit an SM (32 rows 1.3-1.6x
# slower on an H200, benchmarks/results/step_attention_2026-11-28/attention_sweep.py).
BLOCK_SLOTS, WARPS = 64, 4
WHOLE_CACHE_BLOCK_SLOTS, WHOLE_CACHE_WARPS = 16, 2
PROGRAMS_PER_SM = 4  # slices are cut so that (rows x heads x slices) gives every SM a few programs
HEAD_DIMS = (64, 128)  # head sizes the kernel takes (Llama, Mistral, Qwen2, SmolLM2); others go to SDPA

if triton is not None:

    @triton.jit
    def _rotated(ptr, cos, sin, dims, HEAD_DIM: tl.constexpr):
        """One head of the new token (HEAD_DIM values at `ptr`) with Llama's rotary embedding, rounded once to the
        stored dtype as the compiled `rotate` rounds it."""
        half: tl.constexpr = HEAD_DIM // 2
        x = tl.load(ptr + dims).to(tl.float32)
        other = tl.load(ptr + (dims + half) % HEAD_DIM).to(tl.float32)
        return (x * cos + tl.where(dims < half, -other, other) * sin).to(ptr.dtype.element_ty)

    @triton.jit
    def _step_attention_kernel(q_ptr, k_new_ptr, v_new_ptr, cos_ptr, sin_ptr, k_ptr, v_ptr, mask_ptr, slots_ptr,
                               out_ptr, partial_ptr, best_ptr, total_ptr, arrivals_ptr,
                               q_row, k_new_row, v_new_row, cos_row, k_row, k_head, k_slot, v_row, v_head, v_slot,
                               mask_row, length, slice_slots, scale,
                               HEADS: tl.constexpr, GROUPS: tl.constexpr, SLICES: tl.constexpr,
                               SLICES_POW2: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_S: tl.constexpr):
        """One (row, head)'s attention over one slice of its cache, the new token included where its slot falls in
        the slice: softmax partials (the largest score, the sum of exp(score - largest) and the values weighted by
        it, float32), or with one slice the attention itself. The slice holding the new slot rotates the new key,
        writes it and the new value into the cache (once per key/value head) and attends to them from registers, as
        lane 0's first slot. Each of the BLOCK_S lanes keeps its own online softmax over the slots it reads (no
        reduction across lanes until the end). With several slices, the last of a (row, head)'s programs to finish
        (counted in `arrivals`, which it sets back to 0) combines their partials."""
        row, head, piece = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        row64, kv_head = row.to(tl.int64), head // GROUPS
        new_slot = tl.load(slots_ptr + row)
        first = piece * slice_slots
        dims = tl.arange(0, HEAD_DIM)
        cos = tl.load(cos_ptr + row64 * cos_row + dims).to(tl.float32)
        sin = tl.load(sin_ptr + row64 * cos_row + dims).to(tl.float32)
        query = _rotated(q_ptr + row64 * q_row + head * HEAD_DIM, cos, sin, dims, HEAD_DIM).to(tl.float32) * scale
        # The new token, attended by lane 0 from registers before the loop starts on the cached slots
        holds_new = (new_slot >= first) & (new_slot < first + slice_slots) & (new_slot < length)
        key = _rotated(k_new_ptr + row64 * k_new_row + kv_head * HEAD_DIM, cos, sin, dims, HEAD_DIM)
        value = tl.load(v_new_ptr + row64 * v_new_row + kv_head * HEAD_DIM + dims)
        if holds_new & (head % GROUPS == 0):
            tl.store(k_ptr + row64 * k_row + kv_head * k_head + new_slot * k_slot + dims, key)
            tl.store(v_ptr + row64 * v_row + kv_head * v_head + new_slot * v_slot + dims, value)
        kept = holds_new & (tl.load(mask_ptr + row64 * mask_row + new_slot, mask=holds_new, other=0) != 0)
        new_lane = (tl.arange(0, BLOCK_S) == 0) & kept
        # finite: lanes that attend no slot keep weights of 0, not NaN
        best = tl.where(new_lane, tl.sum(key.to(tl.float32) * query, axis=0), -1e30)
        total = tl.where(new_lane, 1.0, 0.0)
        weighted = tl.where(new_lane[:, None], value.to(tl.float32)[None, :], 0.0)
        for start in range(first, tl.minimum(first + slice_slots, new_slot), BLOCK_S):
            slots = start + tl.arange(0, BLOCK_S)
            attended = slots < new_slot
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
            tl.store(partial_ptr + partial * HEAD_DIM + dims, weighted)
            tl.store(best_ptr + partial, largest)
            tl.store(total_ptr + partial, total)
            if last_to_arrive(arrivals_ptr, pair, SLICES):
                pieces = tl.arange(0, SLICES_POW2)
                present = pieces < SLICES
                bests = tl.load(best_ptr + pair * SLICES + pieces, mask=present, other=-float("inf"),
                                cache_modifier=".cg")  # past L1, which may hold no other program's stores
                to_largest = tl.exp(bests - tl.max(bests, axis=0))
                totals = tl.load(total_ptr + pair * SLICES + pieces, mask=present, other=0, cache_modifier=".cg")
                partials = tl.load(partial_ptr + (pair * SLICES + pieces[:, None]) * HEAD_DIM + dims[None, :],
                                   mask=present[:, None], other=0, cache_modifier=".cg")
                result = tl.sum(partials * to_largest[:, None], axis=0) / tl.sum(totals * to_largest, axis=0)
                tl.store(out_ptr + pair * HEAD_DIM + dims, result.to(out_ptr.dtype.element_ty))


@functools.cache
def _multiprocessors(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def slices_for(pairs: int, length: int, multiprocessors: int) -> int:
    """How many slices each of `pairs` (row, head) cuts its `length` cache slots into: enough programs for every SM
    to hold a few, and no slice shorter than a step of BLOCK_SLOTS."""
    return max(1, min(triton.cdiv(PROGRAMS_PER_SM * multiprocessors, pairs), triton.cdiv(length, BLOCK_SLOTS)))


def launch_step_attention(*, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cos: torch.Tensor,
                          sin: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor, mask: torch.Tensor,
                          slots: torch.Tensor, scale: float, slices: int) -> torch.Tensor:
    """The kernel on the new token's query (rows, heads, head_dim), key and value (rows, kv_heads, head_dim),
    unrotated, `cos`/`sin` (rows, head_dim), caches (rows, kv_heads, length, head_dim), `mask` (rows, length)
    boolean, `slots` (rows,) the new token's slot (below `length`), each with unit stride along head_dim."""
    rows, heads, head_dim = query.shape
    length = key_cache.shape[2]
    block_slots, warps = (BLOCK_SLOTS, WARPS) if slices > 1 else (WHOLE_CACHE_BLOCK_SLOTS, WHOLE_CACHE_WARPS)
    slice_slots = triton.cdiv(triton.cdiv(length, slices), block_slots) * block_slots
    out = query.new_empty(rows, heads, 1, head_dim)
    partials = out if slices == 1 else query.new_empty(rows, heads, slices, head_dim, dtype=torch.float32)
    best = query.new_empty(rows, heads, slices, dtype=torch.float32)
    total = torch.empty_like(best)
    arrivals = best if slices == 1 else arrival_counters(query.device, rows * heads)
    _step_attention_kernel[(rows, heads, slices)](
        query, key, value, cos, sin, key_cache, value_cache, mask.view(torch.uint8), slots, out, partials, best,
        total, arrivals, query.stride(0), key.stride(0), value.stride(0), cos.stride(0), *key_cache.stride()[:3],
        *value_cache.stride()[:3], mask.stride(0), length, slice_slots, scale,
        HEADS=heads, GROUPS=heads // key_cache.shape[1], SLICES=slices, SLICES_POW2=triton.next_power_of_2(slices),
        HEAD_DIM=head_dim, BLOCK_S=block_slots, num_warps=warps,
    )
    return out


def rotate(hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Llama's rotary embedding of (batch, heads, length, head_dim) by (batch, length, head_dim) cos/sin. Our own
    copy of transformers' formula: Liger's training kernels replace transformers' module-level function in the whole
    process, and theirs cannot be compiled into one graph."""
    first, second = hidden.chunk(2, dim=-1)
    return hidden * cos.unsqueeze(1) + torch.cat((-second, first), dim=-1) * sin.unsqueeze(1)


def reference_attention(*, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor,
                        ends: torch.Tensor, scale: float) -> torch.Tensor:
    """SDPA of query (rows, heads, 1, head_dim) over key and value (rows, kv_heads, length, head_dim): the slots
    before `ends` that `mask` keeps (key/value heads repeated for grouped queries)."""
    slots = torch.arange(key.shape[2], device=key.device)
    attended = mask & (slots[None, :] < ends[:, None])
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=attended[:, None, None, :], scale=scale)


def reference_step_attention(*, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cos: torch.Tensor,
                             sin: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor,
                             mask: torch.Tensor, slots: torch.Tensor, scale: float) -> torch.Tensor:
    """What the kernel does, in torch ops: rotate, write the new key and value into the caches, SDPA."""
    rows = torch.arange(len(slots), device=slots.device)
    key_cache[rows, :, slots] = rotate(key[:, :, None], cos[:, None], sin[:, None])[:, :, 0]
    value_cache[rows, :, slots] = value
    return reference_attention(query=rotate(query[:, :, None], cos[:, None], sin[:, None]), key=key_cache,
                               value=value_cache, mask=mask, ends=slots + 1, scale=scale)


def _use_kernels(new: list[torch.Tensor], others: list[torch.Tensor], mask: torch.Tensor) -> bool:
    """On CUDA, a head size the kernel takes, unit strides along head_dim, the new token's heads (`new`: query, key,
    value) side by side in each row, a boolean mask with unit stride along the slots."""
    return (triton is not None and mask.is_cuda and new[0].shape[-1] in HEAD_DIMS
            and all(tensor.stride(-1) == 1 for tensor in new + others)
            and all(tensor.stride(1) == tensor.shape[-1] for tensor in new)
            and mask.dtype == torch.bool and mask.stride(1) == 1)


def _step_attention_shape(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cos: torch.Tensor,
                          sin: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor, mask: torch.Tensor,
                          slots: torch.Tensor, scale: float) -> torch.Tensor:
    return query.new_empty(query.shape[0], query.shape[1], 1, query.shape[2])


@define_op("nextgpt::step_attention", fake=_step_attention_shape, mutates_args=("key_cache", "value_cache"))
def step_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cos: torch.Tensor,
                   sin: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor, mask: torch.Tensor,
                   slots: torch.Tensor, scale: float) -> torch.Tensor:
    """A decode step's attention for one new token per row: its query (rows, heads, head_dim), key and value (rows,
    kv_heads, head_dim) before the rotary embedding (`cos`, `sin`: rows, head_dim); the key (rotated) and value are
    written into row r's caches (rows, kv_heads, length, head_dim) at slots[r], and the query attends to the slots up
    to and including it that boolean `mask` (rows, length) keeps. Returns (rows, heads, 1, head_dim). (A custom op's
    tensors cannot be keyword-only; call it with keywords all the same.)"""
    if not _use_kernels([query, key, value], [cos, sin, key_cache, value_cache], mask):
        return reference_step_attention(query=query, key=key, value=value, cos=cos, sin=sin, key_cache=key_cache,
                                        value_cache=value_cache, mask=mask, slots=slots, scale=scale)
    slices = slices_for(query.shape[0] * query.shape[1], key_cache.shape[2], _multiprocessors(query.device))
    return launch_step_attention(query=query, key=key, value=value, cos=cos, sin=sin, key_cache=key_cache,
                                 value_cache=value_cache, mask=mask, slots=slots, scale=scale, slices=slices)


__all__ = ["launch_step_attention", "reference_attention", "reference_step_attention", "rotate", "slices_for",
           "step_attention"]
