"""Prepared (twenty-ninth session): quantized_prompt_kernel.py's int4 several-row kernel on Ampere's tensor-core
instruction (mma.sync through Gluon's `mma_v2`) instead of Hopper's wgmma, so that it could serve sm_80-89 cards (A100,
RTX 30xx/40xx), which take the Triton tiles for several rows today. The weights are made in registers as the shipped
kernel makes them (its fragment layout, its pair PTX); the input rows are loaded from shared memory into the B
operand's registers each step; mma.sync is synchronous, so no wgmma fence and wait. Timed on a Hopper GPU against the
shipped Gluon wgmma launch and the Triton tiles (the only way this machine can price it: an sm_89 card was never
lent), and compiled offline for sm_80, 86, 89 and 90:
    python benchmarks/results/small_rows_2026-11-29/ampere_rows.py compile   # offline
    python benchmarks/results/small_rows_2026-11-29/ampere_rows.py           # on a GPU, beside both launches
    python benchmarks/results/small_rows_2026-11-29/ampere_rows.py alone     # on a GPU, this kernel only
"""
import json
import sys

import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as ttgl
from triton.experimental.gluon.language.nvidia.ampere import async_copy, mma_v2

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
sys.path.insert(0, "benchmarks/results/small_rows_2026-11-29")
from quantized_decode_kernels import FRAGMENT_PAIR_ASM  # noqa: E402
from quantized_prompt_kernel import BLOCK_OUT, WARPS, _copy_step, _thread_barrier, fragment_layouts  # noqa: E402
from quantized_row_kernel import stacked_arguments, stacked_weight  # noqa: E402

GROUP = ttgl.constexpr(64)
TILES = {8: (8, [(8, 6)]), 16: (16, [(8, 6)]), 32: (32, [(8, 6)]), 96: (128, [(4, 2), (8, 6)])}


@gluon.jit
def ampere_kernel(x_ptr, out_ptr, partials_ptr, q0, q1, q2, s0, s1, s2, f0, f1, f2, n0, n01, M, N,
                  K: ttgl.constexpr, PAIR_ASM: ttgl.constexpr, BLOCK_OUT: ttgl.constexpr, WARPS: ttgl.constexpr,
                  a_layout: ttgl.constexpr, words_layout: ttgl.constexpr, BLOCK_ROWS: ttgl.constexpr,
                  STAGES: ttgl.constexpr, AHEAD: ttgl.constexpr, SPLIT_K: ttgl.constexpr):
    """quantized_prompt_kernel.prompt_kernel with mma.sync (16 x 8 x 16 instructions) in place of wgmma."""
    WORDS: ttgl.constexpr = GROUP // 8
    STEPS: ttgl.constexpr = K // GROUP // SPLIT_K
    first_step = ttgl.program_id(2) * STEPS
    mma_layout: ttgl.constexpr = ttgl.NVMMADistributedLayout(version=[2, 0], warps_per_cta=[WARPS, 1],
                                                             instr_shape=[16, 8])
    dot_a: ttgl.constexpr = ttgl.DotOperandLayout(operand_index=0, parent=mma_layout, k_width=2)
    dot_b: ttgl.constexpr = ttgl.DotOperandLayout(operand_index=1, parent=mma_layout, k_width=2)
    x_layout: ttgl.constexpr = ttgl.BlockedLayout([1, 8], [4, 8], [WARPS, 1], [1, 0])
    words_copy: ttgl.constexpr = ttgl.BlockedLayout([1, 4], [16, 2], [WARPS, 1], [1, 0])
    pairs_copy: ttgl.constexpr = ttgl.BlockedLayout([2], [32], [WARPS], [0])
    row_words: ttgl.constexpr = ttgl.SliceLayout(2, words_layout)
    start = ttgl.program_id(0) * BLOCK_OUT
    q_ptr, s_ptr, f_ptr, first, rows_in_weight = stacked_weight(start, q0, q1, q2, s0, s1, s2, f0, f1, f2, n0, n01,
                                                                N)
    dtype = x_ptr.dtype.element_ty
    x_smem = ttgl.allocate_shared_memory(dtype, [STAGES, BLOCK_ROWS, GROUP],
                                         ttgl.SwizzledSharedLayout(8, 1, 8, [1, 0]))
    w_smem = ttgl.allocate_shared_memory(ttgl.int32, [STAGES, BLOCK_OUT, WORDS],
                                         ttgl.SwizzledSharedLayout(1, 1, 1, [1, 0]))
    stored = s0.dtype.element_ty
    s_smem = ttgl.allocate_shared_memory(stored, [STAGES, BLOCK_OUT], ttgl.SwizzledSharedLayout(1, 1, 1, [0]))
    f_smem = ttgl.allocate_shared_memory(stored, [STAGES, BLOCK_OUT], ttgl.SwizzledSharedLayout(1, 1, 1, [0]))
    m = ttgl.program_id(1) * BLOCK_ROWS + ttgl.arange(0, BLOCK_ROWS, layout=ttgl.SliceLayout(1, x_layout))
    inputs = ttgl.arange(0, GROUP, layout=ttgl.SliceLayout(0, x_layout))
    x_offsets = m[:, None] * K + inputs[None, :]
    x_rows = ttgl.broadcast((m < M)[:, None], x_offsets)[0]
    copy_rows = first + ttgl.arange(0, BLOCK_OUT, layout=ttgl.SliceLayout(1, words_copy))
    copy_words = ttgl.arange(0, WORDS, layout=ttgl.SliceLayout(0, words_copy))
    word_offsets = copy_rows[:, None] * (K // 8) + copy_words[None, :]
    scale_offsets = first + ttgl.arange(0, BLOCK_OUT, layout=pairs_copy)
    lane_pair = ttgl.arange(0, 8, layout=ttgl.SliceLayout(0, ttgl.SliceLayout(0, words_layout)))
    shifts = ttgl.expand_dims(ttgl.expand_dims(4 * ((lane_pair // 2) % 4), 0), 0)
    accumulator = ttgl.zeros([BLOCK_OUT, BLOCK_ROWS], ttgl.float32, mma_layout)
    for ahead in ttgl.static_range(AHEAD):
        _copy_step(x_smem, w_smem, s_smem, f_smem, x_ptr, q_ptr, s_ptr, f_ptr, x_offsets, x_rows, word_offsets,
                   scale_offsets, rows_in_weight, first_step + ttgl.minimum(ahead, STEPS - 1), ahead)
    for step in range(STEPS):
        buffer = step % STAGES
        async_copy.wait_group(AHEAD - 1)
        _thread_barrier()
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
        a = ttgl.convert_layout(ttgl.convert_layout(ttgl.reshape(weights, [BLOCK_OUT, GROUP]), a_layout), dot_a)
        b = x_smem.index(buffer).permute((1, 0)).load(dot_b)
        accumulator = mma_v2(a, b, accumulator)
    async_copy.wait_group(0)
    columns = start + ttgl.arange(0, BLOCK_OUT, layout=ttgl.SliceLayout(1, mma_layout))
    rows = ttgl.program_id(1) * BLOCK_ROWS + ttgl.arange(0, BLOCK_ROWS, layout=ttgl.SliceLayout(0, mma_layout))
    if SPLIT_K == 1:
        target, values = out_ptr, accumulator.to(dtype)
    else:
        target, values = partials_ptr + ttgl.program_id(2) * M * N, accumulator
    ttgl.store(target + rows[None, :] * N + columns[:, None], values, mask=(rows < M)[None, :])


def ampere_product(x: torch.Tensor, weights: list, *, rows: int, stages: int, ahead: int, split: int) -> torch.Tensor:
    from split import summed
    outputs = sum(weight.qweight.shape[0] for weight in weights)
    out = x.new_empty(x.shape[0], outputs)
    partials = out if split == 1 else x.new_empty(split, x.shape[0], outputs, dtype=torch.float32)
    a_layout, words_layout = fragment_layouts(BLOCK_OUT, WARPS)
    ampere_kernel[(outputs // BLOCK_OUT, triton.cdiv(x.shape[0], rows), split)](
        x, out, partials, *stacked_arguments(weights), x.shape[0], outputs, x.shape[1], FRAGMENT_PAIR_ASM[x.dtype],
        BLOCK_OUT, WARPS, a_layout, words_layout, rows, stages, ahead, split, num_warps=WARPS)
    return out if split == 1 else summed(partials, x.dtype)


def compile_offline() -> None:
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    from inspect_kernel import main_loop, tool_output
    names = ampere_kernel.arg_names
    types = {"x_ptr": "*bf16", "out_ptr": "*bf16", "partials_ptr": "*fp32", "n0": "i32", "n01": "i32", "M": "i32",
             "N": "i32", **{name: "*i32" for name in ("q0", "q1", "q2")},
             **{name: "*bf16" for name in ("s0", "s1", "s2", "f0", "f1", "f2")}}
    aligned = [name for name, kind in types.items() if kind.startswith("*") or name in ("n0", "n01", "N")]
    a_layout, words_layout = fragment_layouts(BLOCK_OUT, WARPS)
    for capability in (80, 86, 89, 90):
        for rows, split in ((16, 2), (128, 1)):
            constants = dict(K=4096, PAIR_ASM=FRAGMENT_PAIR_ASM[torch.bfloat16], BLOCK_OUT=BLOCK_OUT, WARPS=WARPS,
                             a_layout=a_layout, words_layout=words_layout, BLOCK_ROWS=rows, STAGES=8, AHEAD=6,
                             SPLIT_K=split)
            source = GluonASTSource(fn=ampere_kernel, signature={name: types.get(name, "constexpr") for name in names},
                                    constexprs={(names.index(name),): value for name, value in constants.items()},
                                    attrs={(names.index(name),): [["tt.divisibility", 16]] for name in aligned})
            compiled = triton.compile(source, target=GPUTarget("cuda", capability, 32), options={"num_warps": WARPS})
            usage = tool_output("cuobjdump", compiled.asm["cubin"], "--dump-resource-usage")
            loop = main_loop(tool_output("nvdisasm", compiled.asm["cubin"], "-c"))
            kinds = {}
            for name in loop:
                kinds[name.split(".")[0]] = kinds.get(name.split(".")[0], 0) + 1
            print(json.dumps(dict(capability=capability, rows=rows, split=split, shared=compiled.metadata.shared,
                                  registers=int(usage.split("REG:")[1].split()[0]),
                                  stack=int(usage.split("STACK:")[1].split()[0]), loop=len(loop),
                                  kinds=dict(sorted(kinds.items(), key=lambda item: -item[1])[:12]))), flush=True)


def main(*, compare: bool) -> None:
    """`compare`: the shipped launch and the Triton tiles timed beside it (their first use times their tiles)."""
    import quantized_decode_kernels as kernels
    from profile_decode import rotated_quantized_weights
    from rows import SHAPES, microseconds
    routed = kernels.takes_prompt_kernel
    with torch.no_grad():
        for shape, parts in SHAPES.items():
            sets, _ = rotated_quantized_weights(4, parts)
            for rows, (block_rows, buffers) in TILES.items():
                x = torch.randn(rows, parts[0][1], device="cuda", dtype=torch.bfloat16)
                reference = kernels.reference_product(x.double(), sets[0])
                record = dict(shape=shape, rows=rows)
                launches = (("shipped_wgmma", routed), ("triton", lambda *args, **kwargs: False))
                for name, takes in launches if compare else ():
                    kernels.takes_prompt_kernel = takes
                    record[f"{name}_us"] = microseconds([lambda w=w: kernels.launch_quantized_kernel(x, w)
                                                         for w in sets])
                kernels.takes_prompt_kernel = routed
                for stages, ahead in buffers:
                    for split in (1, 2, 4):
                        if (parts[0][1] // 64) % split:
                            continue
                        options = dict(rows=block_rows, stages=stages, ahead=ahead, split=split)
                        name = f"ampere_{block_rows}x{stages}x{ahead}_split{split}"
                        try:
                            error = (ampere_product(x, sets[0], **options).double() - reference).norm() / (
                                reference.norm())
                            record[name] = [microseconds([lambda w=w: ampere_product(x, w, **options) for w in sets]),
                                            round(float(error), 5)]
                        except Exception as failure:  # recorded; the rest go on
                            record[name] = str(failure)[:300]
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    compile_offline() if sys.argv[1:] == ["compile"] else main(compare=sys.argv[1:] != ["alone"])
