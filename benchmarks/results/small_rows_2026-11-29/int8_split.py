"""The nineteenth session's Gluon int8 prompt prototype (`../quantized_decoding_2026-11-28f/next_gluon_int8.py`: a
byte pair a lane made exactly into wgmma's A registers, the row's scale applied after the loop; its byte-pair PTX and
copy step imported) with its inputs split among SPLIT programs, each writing float32 partial sums, for split.py's
sweep of batched decoding's products.
"""
import sys

import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as ttgl
from triton.experimental.gluon.language.nvidia.ampere import async_copy
from triton.experimental.gluon.language.nvidia.hopper import fence_async_shared, warpgroup_mma, warpgroup_mma_wait

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
sys.path.insert(0, "benchmarks/results/quantized_decoding_2026-11-28f")
from next_gluon_int8 import STEP, _copy_step, pair_asm  # noqa: E402
from quantized_prompt_kernel import _thread_barrier, fragment_layouts  # noqa: E402

BLOCK_OUT, WARPS = 64, 4


@gluon.jit
def int8_prompt_kernel(x_ptr, out_ptr, q_ptr, s_ptr, M, N, K: ttgl.constexpr, PAIR_ASM: ttgl.constexpr,
                       BLOCK_OUT: ttgl.constexpr, BLOCK_ROWS: ttgl.constexpr, WARPS: ttgl.constexpr,
                       STAGES: ttgl.constexpr, SPLIT: ttgl.constexpr, a_layout: ttgl.constexpr,
                       words_layout: ttgl.constexpr):
    """out[s, m, n] = (x @ codes.T)[m, n] * scale[n] over the s-th of SPLIT shares of the inputs for one weight,
    BLOCK_OUT outputs n and BLOCK_ROWS rows m."""
    WORDS: ttgl.constexpr = STEP // 4
    STEPS: ttgl.constexpr = K // STEP // SPLIT
    first_step = ttgl.program_id(2) * STEPS
    AHEAD: ttgl.constexpr = STAGES - 2
    mma_layout: ttgl.constexpr = ttgl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[WARPS, 1],
                                                             instr_shape=[16, BLOCK_ROWS, 16])
    dot_a: ttgl.constexpr = ttgl.DotOperandLayout(operand_index=0, parent=mma_layout, k_width=2)
    x_layout: ttgl.constexpr = ttgl.BlockedLayout([1, 8], [4, 8], [WARPS, 1], [1, 0])
    words_copy: ttgl.constexpr = ttgl.BlockedLayout([1, 4], [8, 4], [WARPS, 1], [1, 0])
    row_words: ttgl.constexpr = ttgl.SliceLayout(2, words_layout)
    dtype = x_ptr.dtype.element_ty
    start = ttgl.program_id(0) * BLOCK_OUT
    x_smem = ttgl.allocate_shared_memory(dtype, [STAGES, BLOCK_ROWS, STEP],
                                         ttgl.NVMMASharedLayout.get_default_for([BLOCK_ROWS, STEP], dtype))
    w_smem = ttgl.allocate_shared_memory(ttgl.int32, [STAGES, BLOCK_OUT, WORDS],
                                         ttgl.SwizzledSharedLayout(1, 1, 1, [1, 0]))
    m = ttgl.program_id(1) * BLOCK_ROWS + ttgl.arange(0, BLOCK_ROWS, layout=ttgl.SliceLayout(1, x_layout))
    inputs = ttgl.arange(0, STEP, layout=ttgl.SliceLayout(0, x_layout))
    x_offsets = m[:, None] * K + inputs[None, :]
    x_rows = ttgl.broadcast((m < M)[:, None], x_offsets)[0]
    copy_rows = start + ttgl.arange(0, BLOCK_OUT, layout=ttgl.SliceLayout(1, words_copy))
    copy_words = ttgl.arange(0, WORDS, layout=ttgl.SliceLayout(0, words_copy))
    word_offsets = copy_rows[:, None] * (K // 4) + copy_words[None, :]
    byte = ttgl.arange(0, 4, layout=ttgl.SliceLayout(0, ttgl.SliceLayout(0, words_layout)))
    byte_pairs = ttgl.expand_dims(ttgl.expand_dims(byte // 2, 0), 0)
    accumulator = ttgl.zeros([BLOCK_OUT, BLOCK_ROWS], ttgl.float32, mma_layout)
    for ahead in ttgl.static_range(AHEAD):
        _copy_step(x_smem, w_smem, x_ptr, q_ptr, x_offsets, x_rows, word_offsets,
                   first_step + ttgl.minimum(ahead, STEPS - 1), ahead)
    for step in range(STEPS):
        buffer = step % STAGES
        async_copy.wait_group(AHEAD - 1)
        fence_async_shared()
        _thread_barrier()
        _copy_step(x_smem, w_smem, x_ptr, q_ptr, x_offsets, x_rows, word_offsets,
                   first_step + ttgl.minimum(step + AHEAD, STEPS - 1), (step + AHEAD) % STAGES)
        words = ttgl.expand_dims(w_smem.index(buffer).load(row_words), 2)
        word_of_each, pair_of_each = ttgl.broadcast(words, byte_pairs)
        codes = ttgl.inline_asm_elementwise(PAIR_ASM, "=r,r,r,r,r", [word_of_each, pair_of_each], dtype=dtype,
                                            is_pure=True, pack=2)
        a = ttgl.convert_layout(ttgl.convert_layout(ttgl.reshape(codes, [BLOCK_OUT, STEP]), a_layout), dot_a)
        accumulator = warpgroup_mma(a, x_smem.index(buffer).permute((1, 0)), accumulator, is_async=True)
        accumulator = warpgroup_mma_wait(num_outstanding=0, deps=[accumulator])
    async_copy.wait_group(0)
    columns = start + ttgl.arange(0, BLOCK_OUT, layout=ttgl.SliceLayout(1, mma_layout))
    rows = ttgl.program_id(1) * BLOCK_ROWS + ttgl.arange(0, BLOCK_ROWS, layout=ttgl.SliceLayout(0, mma_layout))
    scale = ttgl.load(s_ptr + columns).to(ttgl.float32)
    out_ptr += ttgl.program_id(2) * M * N
    ttgl.store(out_ptr + rows[None, :] * N + columns[:, None],
               (accumulator * scale[:, None]).to(out_ptr.dtype.element_ty),
               mask=(rows < M)[None, :])


def int8_product(x: torch.Tensor, qweight: torch.Tensor, scale: torch.Tensor, *, rows_a_program: int, stages: int,
                 split: int) -> torch.Tensor:
    """x @ (codes * scale).T, or with `split` > 1 its float32 partial sums (split, rows, outputs)."""
    rows, columns = x.shape
    n = qweight.shape[0]
    out = x.new_empty(rows, n) if split == 1 else x.new_empty(split, rows, n, dtype=torch.float32)
    a_layout, words_layout = fragment_layouts(BLOCK_OUT, WARPS, inputs_per_word=4)
    int8_prompt_kernel[(n // BLOCK_OUT, triton.cdiv(rows, rows_a_program), split)](
        x, out, qweight.view(torch.int32), scale.reshape(-1), rows, n, columns,
        PAIR_ASM=pair_asm("bf16" if x.dtype == torch.bfloat16 else "f16"), BLOCK_OUT=BLOCK_OUT,
        BLOCK_ROWS=rows_a_program, WARPS=WARPS, STAGES=stages, SPLIT=split, a_layout=a_layout,
        words_layout=words_layout, num_warps=WARPS)
    return out
