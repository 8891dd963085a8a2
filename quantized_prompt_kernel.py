"""int4 products of several rows in Gluon: the weights dequantized straight into the tensor cores' registers. Prompts
and batched decoding (2 to DEQUANTIZED_ROWS rows) on Hopper (sm_90), batched decoding up to 32 rows on sm_80-89; one
row takes quantized_row_kernel.py.

quantized_decode_kernels.py's several-row int4 tiles (Triton) dequantize a weight tile, store it to shared memory and
wait for each step's wgmma before dequantizing the next (their compiled TTGIR). Here each thread loads exactly the
int32 words of its fragment of the product's left operand (`fragment_layouts`: the fragment's layout over (output,
word, input of the word)); the four lanes that share a fragment row load the same word and each makes its own pair of
neighbouring weights from it, with the other int4 kernels' arithmetic (a shift, an and-or into a 16-bit number's
mantissa, two multiply-adds of 16-bit pairs: dequantize()'s values). The registers go to the tensor cores as they
are, w @ x.T, the input rows on the right (8 to 128 of them: the instruction's N side): from shared memory for
Hopper's wgmma, loaded into registers for mma.sync (sm_80 and later; on an H200 faster than wgmma up to 16 rows).
Words, scales, offsets and inputs arrive by asynchronous copies (cp.async) AHEAD steps ahead of the step multiplied,
into a ring of STAGES shared buffers. Each wgmma is waited for before the next step's weights are made: the
fragment's registers cannot be held for a wgmma in flight (its 16-bit halves are what the compiler tracks; ptxas gave
the packed registers to the next step, and results went wrong), so the programs an SM holds overlap one another's
dequantization and products instead. A weight of few output tiles (4096 outputs: o, down) would leave SMs idle, so a
tile's steps may be split among SPLIT_K programs that write float32 partial sums, added after (as the Triton tiles do).

The tiles are timed on first use per weight shape and bucket of rows among BUCKET_TILES (quantized_decode_kernels.py
builds the autotuned launch). H200, 7B shapes, a layer's four products against the Triton tiles: 8 rows (batched
decoding) wgmma 79.8 us, mma.sync 68.4, Triton 102.0; 96 rows (a prompt) wgmma 139.0, Triton 178.6
(benchmarks/RESULTS.md).
"""

import functools

import torch

try:
    import triton
    from triton.experimental import gluon
    from triton.experimental.gluon import language as ttgl
    from triton.experimental.gluon.language.nvidia.ampere import async_copy, mma_v2
    from triton.experimental.gluon.language.nvidia.hopper import fence_async_shared, warpgroup_mma, warpgroup_mma_wait
except ImportError:  # no Triton, or one without Gluon's Hopper API (before 3.5): the Triton tiles serve
    gluon = None
try:
    from .quantized_row_kernel import stacked_arguments, stacked_weight
except ImportError:
    from quantized_row_kernel import stacked_arguments, stacked_weight

GROUP = 64  # inputs a step: the int4 group this kernel takes
BLOCK_OUT, WARPS = 64, 4  # outputs a program (wgmma's M side for one warp group)
MIN_ROWS = 2  # one row: quantized_row_kernel.py, 1.6x faster (q|k|v on an H200, benchmarks/RESULTS.md)
BUCKETS = (8, 16, 32, 64, 128, 256)  # the tiles are timed per weight shape and bucket of rows
# Buckets that cards before Hopper take here (mma.sync only): on an H200 its tiles beat the Triton tiles up to 32
# rows and lost at 96 (benchmarks/RESULTS.md).
MMA_V2_BUCKETS = (8, 16, 32)
# By bucket: rows a program, and the (mma.sync or wgmma, shared buffers, steps copied ahead, SPLIT_K) timed on first
# use. Each product is waited for within its step, so once a step's barrier is passed the step before's buffer is
# free and up to STAGES - 1 ahead would be safe. H200 sweeps (7B shapes; RESULTS.md): up to 32 rows 8 buffers 6 ahead
# (4 and 2 were 8-39% slower), for prompts 4 and 2; splits of 2 (q|k|v) and 4 (o, down) the fastest where the
# launch's tiles are fewer than its SMs can hold, none for gate|up; mma.sync faster than wgmma up to 16 rows, slower
# from 32. Longer prompts have tiles enough and no room to spare for partial sums.
_SPLITS = (1, 2, 4)
_FEW_ROWS = [(mma, 8, 6, split) for mma in (True, False) for split in _SPLITS]
BUCKET_TILES = {8: (8, _FEW_ROWS), 16: (16, _FEW_ROWS), 32: (32, _FEW_ROWS),
                64: (64, [(False, *buffers, split) for buffers in ((8, 6), (4, 2)) for split in _SPLITS]),
                128: (128, [(False, 4, 2, split) for split in _SPLITS]), 256: (128, [(False, 4, 2, 1)])}
TILE_FIELDS = ("MMA_V2", "STAGES", "AHEAD", "SPLIT_K")


@functools.cache  # made once: every launch passes them
def fragment_layouts(outputs: int, warps: int, *, inputs_per_word: int = 8) -> tuple:
    """wgmma's A-operand layout for (outputs, GROUP) 16-bit inputs as Triton 3.6 builds it (`to_linear_layout`:
    registers k1, m8, k8, k16, k32, then m beyond the warps; lanes k2, k4, m1, m2, m4; warps m16, m32, ..), its
    registers listed in another order (a renaming, no data moves: each row's words then come in one vector load), and
    the same layout over (outputs, word, input of the word), input k = inputs_per_word x word + i (8 int4 codes a
    word; 4 int8)."""
    register_m = [[m, 0] for m in (2 ** e for e in range(20)) if 16 * warps <= m < outputs]
    reg = [[0, 1], [0, 8], [0, 16], [0, 32], [8, 0]] + register_m
    lane = [[0, 2], [0, 4], [1, 0], [2, 0], [4, 0]]
    warp = [[16 * 2 ** e, 0] for e in range(warps.bit_length() - 1)]

    def split(bases: list) -> list:
        return [[m, k // inputs_per_word, 0] if k >= inputs_per_word else [m, 0, k] for m, k in bases]

    return (ttgl.DistributedLinearLayout(reg, lane, warp, [], [outputs, GROUP]),
            ttgl.DistributedLinearLayout(split(reg), split(lane), split(warp), [],
                                         [outputs, GROUP // inputs_per_word, inputs_per_word]))


if gluon is not None:
    _GROUP = ttgl.constexpr(GROUP)
    # Gluon's names change between Triton releases: up to 3.6, and after
    _thread_barrier = getattr(ttgl, "thread_barrier", None) or ttgl.barrier  # every thread of the program waits
    _async_load = getattr(async_copy, "async_load", None) or async_copy.async_copy_global_to_shared  # cp.async

    @gluon.jit
    def _copy_step(x_smem, w_smem, s_smem, f_smem, x_ptr, q_ptr, s_ptr, f_ptr, x_offsets, x_rows, word_offsets,
                   scale_offsets, rows_in_weight, step, buffer):
        """Asynchronous copies of one step's inputs, words, scales and offsets into shared buffer `buffer`."""
        _async_load(x_smem.index(buffer), x_ptr + x_offsets + step * _GROUP, mask=x_rows)
        _async_load(w_smem.index(buffer), q_ptr + word_offsets + step * (_GROUP // 8))
        _async_load(s_smem.index(buffer), s_ptr + step * rows_in_weight + scale_offsets)
        _async_load(f_smem.index(buffer), f_ptr + step * rows_in_weight + scale_offsets)
        async_copy.commit_group()

    @gluon.jit
    def prompt_kernel(x_ptr, out_ptr, partials_ptr, q0, q1, q2, s0, s1, s2, f0, f1, f2, n0, n01, M, N,
                      K: ttgl.constexpr, PAIR_ASM: ttgl.constexpr, BLOCK_OUT: ttgl.constexpr, WARPS: ttgl.constexpr,
                      a_layout: ttgl.constexpr, words_layout: ttgl.constexpr, BLOCK_ROWS: ttgl.constexpr,
                      STAGES: ttgl.constexpr, AHEAD: ttgl.constexpr, SPLIT_K: ttgl.constexpr,
                      MMA_V2: ttgl.constexpr, ROW_BUCKET: ttgl.constexpr = 0):
        """out[m, n] = x @ dequantized(w).T for BLOCK_OUT output columns n (of weight 0, 1 or 2: a tile never
        straddles two) and BLOCK_ROWS rows m. PAIR_ASM makes one pair of weights from its word (`fragment_pair_asm`).
        SPLIT_K > 1: program (., ., s) takes the s-th of SPLIT_K equal shares of the inputs and writes its float32
        partial sums to partials_ptr's slice s (SPLIT_K, M, N). MMA_V2: mma.sync (16 x 8 x 16, sm_80 and later; the
        input rows loaded into registers each step) instead of wgmma (sm_90). ROW_BUCKET: only autotune's key."""
        WORDS: ttgl.constexpr = _GROUP // 8
        STEPS: ttgl.constexpr = K // _GROUP // SPLIT_K  # a program's
        first_step = ttgl.program_id(2) * STEPS
        if MMA_V2:
            mma_layout: ttgl.constexpr = ttgl.NVMMADistributedLayout(version=[2, 0], warps_per_cta=[WARPS, 1],
                                                                     instr_shape=[16, 8])
            x_shared: ttgl.constexpr = ttgl.SwizzledSharedLayout(8, 1, 8, [1, 0])  # for ldmatrix
        else:
            mma_layout: ttgl.constexpr = ttgl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[WARPS, 1],
                                                                     instr_shape=[16, BLOCK_ROWS, 16])
            x_shared: ttgl.constexpr = ttgl.NVMMASharedLayout.get_default_for([BLOCK_ROWS, _GROUP],
                                                                             x_ptr.dtype.element_ty)
        dot_a: ttgl.constexpr = ttgl.DotOperandLayout(operand_index=0, parent=mma_layout, k_width=2)
        dot_b: ttgl.constexpr = ttgl.DotOperandLayout(operand_index=1, parent=mma_layout, k_width=2)
        x_layout: ttgl.constexpr = ttgl.BlockedLayout([1, 8], [4, 8], [WARPS, 1], [1, 0])  # 16-byte copies
        words_copy: ttgl.constexpr = ttgl.BlockedLayout([1, 4], [16, 2], [WARPS, 1], [1, 0])
        pairs_copy: ttgl.constexpr = ttgl.BlockedLayout([2], [32], [WARPS], [0])  # 4-byte copies: cp.async's least
        row_words: ttgl.constexpr = ttgl.SliceLayout(2, words_layout)
        start = ttgl.program_id(0) * BLOCK_OUT
        q_ptr, s_ptr, f_ptr, first, rows_in_weight = stacked_weight(start, q0, q1, q2, s0, s1, s2, f0, f1, f2, n0,
                                                                    n01, N)
        dtype = x_ptr.dtype.element_ty
        x_smem = ttgl.allocate_shared_memory(dtype, [STAGES, BLOCK_ROWS, _GROUP], x_shared)
        w_smem = ttgl.allocate_shared_memory(ttgl.int32, [STAGES, BLOCK_OUT, WORDS],
                                             ttgl.SwizzledSharedLayout(1, 1, 1, [1, 0]))
        stored = s0.dtype.element_ty  # the scales' and offsets' dtype, converted to the input's once loaded
        s_smem = ttgl.allocate_shared_memory(stored, [STAGES, BLOCK_OUT], ttgl.SwizzledSharedLayout(1, 1, 1, [0]))
        f_smem = ttgl.allocate_shared_memory(stored, [STAGES, BLOCK_OUT], ttgl.SwizzledSharedLayout(1, 1, 1, [0]))
        m = ttgl.program_id(1) * BLOCK_ROWS + ttgl.arange(0, BLOCK_ROWS, layout=ttgl.SliceLayout(1, x_layout))
        inputs = ttgl.arange(0, _GROUP, layout=ttgl.SliceLayout(0, x_layout))
        x_offsets = m[:, None] * K + inputs[None, :]
        x_rows = ttgl.broadcast((m < M)[:, None], x_offsets)[0]
        copy_rows = first + ttgl.arange(0, BLOCK_OUT, layout=ttgl.SliceLayout(1, words_copy))
        copy_words = ttgl.arange(0, WORDS, layout=ttgl.SliceLayout(0, words_copy))
        word_offsets = copy_rows[:, None] * (K // 8) + copy_words[None, :]
        scale_offsets = first + ttgl.arange(0, BLOCK_OUT, layout=pairs_copy)
        lane_pair = ttgl.arange(0, 8, layout=ttgl.SliceLayout(0, ttgl.SliceLayout(0, words_layout)))
        shifts = ttgl.expand_dims(ttgl.expand_dims(4 * ((lane_pair // 2) % 4), 0), 0)  # input i: bits 4 (i // 2)..
        accumulator = ttgl.zeros([BLOCK_OUT, BLOCK_ROWS], ttgl.float32, mma_layout)
        for ahead in ttgl.static_range(AHEAD):
            _copy_step(x_smem, w_smem, s_smem, f_smem, x_ptr, q_ptr, s_ptr, f_ptr, x_offsets, x_rows, word_offsets,
                       scale_offsets, rows_in_weight, first_step + ttgl.minimum(ahead, STEPS - 1), ahead)
        for step in range(STEPS):
            buffer = step % STAGES
            async_copy.wait_group(AHEAD - 1)  # this step's copies have landed (AHEAD groups were issued after it)
            if not MMA_V2:
                fence_async_shared()  # wgmma reads shared memory through the async proxy
            _thread_barrier()  # ... for every thread; and no thread still reads the buffer copied into next
            _copy_step(x_smem, w_smem, s_smem, f_smem, x_ptr, q_ptr, s_ptr, f_ptr, x_offsets, x_rows, word_offsets,
                       scale_offsets, rows_in_weight, first_step + ttgl.minimum(step + AHEAD, STEPS - 1),
                       (step + AHEAD) % STAGES)
            words = ttgl.expand_dims(w_smem.index(buffer).load(row_words), 2)
            scale = ttgl.expand_dims(s_smem.index(buffer).load(ttgl.SliceLayout(1, row_words)).to(dtype)[:, None], 2)
            offset = ttgl.expand_dims(f_smem.index(buffer).load(ttgl.SliceLayout(1, row_words)).to(dtype)[:, None], 2)
            word_of_each, shift_of_each = ttgl.broadcast(words, shifts)
            weights = ttgl.inline_asm_elementwise(
                PAIR_ASM, "=r,r,r,r,r,r,r",
                [word_of_each, shift_of_each, ttgl.broadcast(scale, word_of_each)[0],
                 ttgl.broadcast(offset, word_of_each)[0]], dtype=dtype, is_pure=True, pack=2)
            a = ttgl.convert_layout(ttgl.convert_layout(ttgl.reshape(weights, [BLOCK_OUT, _GROUP]), a_layout), dot_a)
            if MMA_V2:
                accumulator = mma_v2(a, x_smem.index(buffer).permute((1, 0)).load(dot_b), accumulator)
            else:
                accumulator = warpgroup_mma(a, x_smem.index(buffer).permute((1, 0)), accumulator, is_async=True)
                accumulator = warpgroup_mma_wait(num_outstanding=0, deps=[accumulator])
        async_copy.wait_group(0)
        columns = start + ttgl.arange(0, BLOCK_OUT, layout=ttgl.SliceLayout(1, mma_layout))
        rows = ttgl.program_id(1) * BLOCK_ROWS + ttgl.arange(0, BLOCK_ROWS, layout=ttgl.SliceLayout(0, mma_layout))
        if SPLIT_K == 1:
            target, values = out_ptr, accumulator.to(dtype)
        else:
            target, values = partials_ptr + ttgl.program_id(2) * M * N, accumulator
        ttgl.store(target + rows[None, :] * N + columns[:, None], values, mask=(rows < M)[None, :])


else:
    prompt_kernel = None


def bucket(rows: int, buckets: tuple = BUCKETS) -> int:
    """The bucket of rows a launch's tiles are timed for: the smallest holding `rows`, else the largest."""
    return next((bucket for bucket in buckets if rows <= bucket), buckets[-1])


def _hopper(x: torch.Tensor) -> bool:
    return torch.cuda.get_device_capability(x.device) == (9, 0)


def takes_prompt_kernel(x: torch.Tensor, *, bits: int, group: int) -> bool:
    """Whether this kernel serves the product: Gluon at hand, several rows on an sm_90 GPU (up to MMA_V2_BUCKETS'
    largest on sm_80-89), int4 groups of GROUP inputs, 16-bit inputs."""
    if gluon is None or not x.is_cuda or x.dtype not in (torch.bfloat16, torch.float16):
        return False
    capability = torch.cuda.get_device_capability(x.device)
    rows_here = x.shape[0] >= MIN_ROWS and (capability == (9, 0) or (
        (8, 0) <= capability < (9, 0) and bucket(x.shape[0]) in MMA_V2_BUCKETS))
    return rows_here and bits == 4 and group == GROUP and x.shape[1] % GROUP == 0


def tile_configs() -> list[dict]:
    """Every bucket's tiles as launch keywords (autotune's configurations)."""
    tiles = {(rows, *tile) for rows, bucket_tiles in BUCKET_TILES.values() for tile in bucket_tiles}
    return [dict(BLOCK_ROWS=rows, **dict(zip(TILE_FIELDS, tile)), num_warps=WARPS) for rows, *tile in sorted(tiles)]


def tile_fits(config: dict, *, rows_bucket: int, inputs: int, hopper: bool) -> bool:
    """Whether autotune may time this configuration for a bucket of rows and weights of `inputs` inputs: one of the
    bucket's tiles, its split a whole number of steps; before Hopper (no wgmma) mma.sync's alone."""
    rows, tiles = BUCKET_TILES[rows_bucket]
    tile = tuple(config[field] for field in TILE_FIELDS)
    return (config["BLOCK_ROWS"] == rows and tile in tiles and (inputs // GROUP) % config["SPLIT_K"] == 0
            and (hopper or config["MMA_V2"]))


def fitting_configs(x: torch.Tensor, configs: list, inputs: int) -> list:
    """Autotune's candidates for a launch over x's rows (triton.Config's, pruned by `tile_fits`)."""
    return [config for config in configs
            if tile_fits(config.kwargs, rows_bucket=bucket(x.shape[0]), inputs=inputs, hopper=_hopper(x))]


def most_splits(rows_bucket: int) -> int:
    """The largest SPLIT_K among a bucket's tiles: the float32 partial sums a launch needs room for."""
    return max(tile[-1] for tile in BUCKET_TILES[rows_bucket][1])


def launch(kernel, x: torch.Tensor, weights: list, *, pair_asm: str, out: torch.Tensor, partials: torch.Tensor,
           **tiles) -> None:
    """`kernel` (`prompt_kernel` with `tiles` given: BLOCK_ROWS, STAGES, AHEAD, SPLIT_K; or an autotuned wrapper
    that picks them) over one to three int4 PackedWeights of GROUP-input groups (x: (rows, K), contiguous;
    `takes_prompt_kernel`) into out (rows, outputs), or, with SPLIT_K > 1, its float32 partial sums into `partials`
    for the caller to add. `pair_asm`: one pair of weights from a word in x's dtype
    (quantized_decode_kernels.fragment_pair_asm)."""
    rows, columns = x.shape
    outputs = out.shape[1]
    a_layout, words_layout = fragment_layouts(BLOCK_OUT, WARPS)
    grid = lambda meta: (outputs // BLOCK_OUT, triton.cdiv(rows, meta["BLOCK_ROWS"]), meta["SPLIT_K"])  # noqa: E731
    kernel[grid](x, out, partials, *stacked_arguments(weights), rows, outputs, columns, pair_asm, BLOCK_OUT,
                 WARPS, a_layout, words_layout, **tiles)
