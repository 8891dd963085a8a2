"""Prepared for the next session (2026-11-28, nineteenth; compiled offline for sm_90, not yet run on a GPU): batch-1
int4 products on the tensor cores, with quantized_prompt_kernel.py's dequantization into wgmma's registers.

The one-row int4 kernels (quantized_decode_kernels.py) are bound by issuing instructions, about 3.9 a weight: making
the weight (two a pair: shift, and-or, two multiply-adds) and multiplying it by its input (a multiply-add of pairs,
the inputs' loads, the sums). Here the tensor cores take the multiplication, so a weight costs its making and a share
of the loop's overhead. One row is too few for wgmma's N side, and 16 outputs a program too few for its M side (64),
so each program's four warps each take a quarter of the inputs of the same 16 outputs: A' (64 x K/4) holds row
(q, n) = weight row n's quarter q, B' (K/4 x 8) holds column q' = the input's quarter q' (columns 4-7 zero), and
out[n] is the sum over q of (A' B')[(q, n), q], the diagonal blocks, added across the warps once at the end. The
tensor cores do 8x the useful products, which costs nothing here: a batch-1 product is memory- and issue-bound.
Copies (words, scales, offsets, input quarters) run AHEAD steps ahead through STAGES shared buffers, as in the prompt
kernel; 16 outputs a program give q|k|v 768 programs, o and down 256.

Offline (Triton 3.6, sm_90): 56-70 registers, 13-53 KB shared; the loop issues 4.3 instructions a weight with one
group a step and 3.2 with four (`SUB`: copies, barrier and waits paid once for four groups), against the shipped
one-row kernel's 3.9: at most about 1.2x if the products stay bound by issue (two of the four instructions a pair
make the weight from its code, two apply MAGIC and the scale and offset).

    python benchmarks/results/quantized_decoding_2026-11-28f/next_gluon_gemv.py compile   # offline, sm_90
    python benchmarks/results/quantized_decoding_2026-11-28f/next_gluon_gemv.py           # on an sm_90 GPU
"""
import json
import sys

import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as ttgl
from triton.experimental.gluon.language.nvidia.ampere import async_copy
from triton.experimental.gluon.language.nvidia.hopper import fence_async_shared, warpgroup_mma, warpgroup_mma_wait

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from quantized_decode_kernels import FRAGMENT_PAIR_ASM  # noqa: E402
from quantized_prompt_kernel import _async_load, _thread_barrier, fragment_layouts  # noqa: E402

GROUP = ttgl.constexpr(64)
OUTPUTS = 16  # a program's weight rows; its A' has 4 x 16 = 64 rows, one wgmma's M
# (shared buffers, steps copied ahead, groups a step: each step's copies, barrier and waits paid for SUB groups)
CONFIGS = [(4, 2, 1), (8, 6, 1), (3, 2, 4), (4, 3, 4), (3, 2, 2)]


@gluon.jit
def _copy_step(x_smem, w_smem, s_smem, f_smem, x_ptr, q_ptr, s_ptr, f_ptr, x_offsets, x_rows, word_offsets,
               scale_offsets, N, step, buffer, SUB: ttgl.constexpr):
    """The copies of step `step` (groups SUB step..) into buffers SUB buffer.., one commit group."""
    for part in ttgl.static_range(SUB):
        group = step * SUB + part
        _async_load(x_smem.index(buffer * SUB + part), x_ptr + x_offsets + group * GROUP, mask=x_rows)
        _async_load(w_smem.index(buffer * SUB + part), q_ptr + word_offsets + group * (GROUP // 8))
        _async_load(s_smem.index(buffer * SUB + part), s_ptr + group * N + scale_offsets)
        _async_load(f_smem.index(buffer * SUB + part), f_ptr + group * N + scale_offsets)
    async_copy.commit_group()


@gluon.jit
def gemv_kernel(x_ptr, out_ptr, q_ptr, s_ptr, f_ptr, N, K: ttgl.constexpr, PAIR_ASM: ttgl.constexpr,
                STAGES: ttgl.constexpr, AHEAD: ttgl.constexpr, SUB: ttgl.constexpr, a_layout: ttgl.constexpr,
                words_layout: ttgl.constexpr):
    """out[n] = dequantized(w)[n] . x for 16 outputs n, x one row of K inputs."""
    QUARTER: ttgl.constexpr = K // 4
    STEPS: ttgl.constexpr = QUARTER // (GROUP * SUB)
    WORDS: ttgl.constexpr = GROUP // 8
    mma_layout: ttgl.constexpr = ttgl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                             instr_shape=[16, 8, 16])
    dot_a: ttgl.constexpr = ttgl.DotOperandLayout(operand_index=0, parent=mma_layout, k_width=2)
    x_layout: ttgl.constexpr = ttgl.BlockedLayout([1, 4], [2, 16], [4, 1], [1, 0])  # (8, 64): 8-byte copies
    words_copy: ttgl.constexpr = ttgl.BlockedLayout([1, 4], [16, 2], [4, 1], [1, 0])
    pairs_copy: ttgl.constexpr = ttgl.BlockedLayout([2], [32], [4], [0])
    row_words: ttgl.constexpr = ttgl.SliceLayout(2, words_layout)
    dtype = x_ptr.dtype.element_ty
    first = ttgl.program_id(0) * 16
    x_smem = ttgl.allocate_shared_memory(dtype, [STAGES * SUB, 8, GROUP],
                                         ttgl.NVMMASharedLayout.get_default_for([8, GROUP], dtype))
    w_smem = ttgl.allocate_shared_memory(ttgl.int32, [STAGES * SUB, 64, WORDS],
                                         ttgl.SwizzledSharedLayout(1, 1, 1, [1, 0]))
    stored = s_ptr.dtype.element_ty
    s_smem = ttgl.allocate_shared_memory(stored, [STAGES * SUB, 64], ttgl.SwizzledSharedLayout(1, 1, 1, [0]))
    f_smem = ttgl.allocate_shared_memory(stored, [STAGES * SUB, 64], ttgl.SwizzledSharedLayout(1, 1, 1, [0]))
    # B': row q' of the tile = the input's quarter q' (rows 4-7 zero)
    quarters = ttgl.arange(0, 8, layout=ttgl.SliceLayout(1, x_layout))
    x_offsets = quarters[:, None] * QUARTER + ttgl.arange(0, GROUP, layout=ttgl.SliceLayout(0, x_layout))[None, :]
    x_rows = ttgl.broadcast((quarters < 4)[:, None], x_offsets)[0]
    # A': row r = (q, n) = weight row first + n, inputs q K/4..
    rows = ttgl.arange(0, 64, layout=ttgl.SliceLayout(1, words_copy))
    word_offsets = ((first + rows % 16) * (K // 8) + (rows // 16) * (QUARTER // 8))[:, None] + ttgl.arange(
        0, WORDS, layout=ttgl.SliceLayout(0, words_copy))[None, :]
    pair_rows = ttgl.arange(0, 64, layout=pairs_copy)
    scale_offsets = (pair_rows // 16) * (QUARTER // GROUP) * N + first + pair_rows % 16
    lane_pair = ttgl.arange(0, 8, layout=ttgl.SliceLayout(0, ttgl.SliceLayout(0, words_layout)))
    shifts = ttgl.expand_dims(ttgl.expand_dims(4 * ((lane_pair // 2) % 4), 0), 0)
    accumulator = ttgl.zeros([64, 8], ttgl.float32, mma_layout)
    for ahead in ttgl.static_range(AHEAD):
        _copy_step(x_smem, w_smem, s_smem, f_smem, x_ptr, q_ptr, s_ptr, f_ptr, x_offsets, x_rows, word_offsets,
                   scale_offsets, N, ahead, ahead, SUB)
    for step in range(STEPS):
        buffer = step % STAGES
        async_copy.wait_group(AHEAD - 1)
        fence_async_shared()
        _thread_barrier()
        _copy_step(x_smem, w_smem, s_smem, f_smem, x_ptr, q_ptr, s_ptr, f_ptr, x_offsets, x_rows, word_offsets,
                   scale_offsets, N, ttgl.minimum(step + AHEAD, STEPS - 1), (step + AHEAD) % STAGES, SUB)
        for part in ttgl.static_range(SUB):
            index = buffer * SUB + part
            words = ttgl.expand_dims(w_smem.index(index).load(row_words), 2)
            scale = ttgl.expand_dims(s_smem.index(index).load(ttgl.SliceLayout(1, row_words)).to(dtype)[:, None], 2)
            offset = ttgl.expand_dims(f_smem.index(index).load(ttgl.SliceLayout(1, row_words)).to(dtype)[:, None], 2)
            word_of_each, shift_of_each = ttgl.broadcast(words, shifts)
            weights = ttgl.inline_asm_elementwise(
                PAIR_ASM, "=r,r,r,r,r,r,r",
                [word_of_each, shift_of_each, ttgl.broadcast(scale, word_of_each)[0],
                 ttgl.broadcast(offset, word_of_each)[0]], dtype=dtype, is_pure=True, pack=2)
            a = ttgl.convert_layout(ttgl.convert_layout(ttgl.reshape(weights, [64, GROUP]), a_layout), dot_a)
            accumulator = warpgroup_mma(a, x_smem.index(index).permute((1, 0)), accumulator, is_async=True)
            accumulator = warpgroup_mma_wait(num_outstanding=0, deps=[accumulator])
    async_copy.wait_group(0)
    # the diagonal blocks: row (q, n), column q; then the four quarters of each output added
    columns = ttgl.arange(0, 8, layout=ttgl.SliceLayout(0, mma_layout))
    a_rows = ttgl.arange(0, 64, layout=ttgl.SliceLayout(1, mma_layout))
    partial = ttgl.sum(ttgl.where(columns[None, :] == (a_rows // 16)[:, None], accumulator, 0.0), axis=1)
    partials = ttgl.allocate_shared_memory(ttgl.float32, [64], ttgl.SwizzledSharedLayout(1, 1, 1, [0]))
    partials.store(partial)
    _thread_barrier()
    sum_layout: ttgl.constexpr = ttgl.BlockedLayout([1, 1], [4, 8], [1, 4], [1, 0])
    total = ttgl.sum(partials.reshape([4, 16]).load(sum_layout), axis=0)
    ttgl.store(out_ptr + first + ttgl.arange(0, 16, layout=ttgl.SliceLayout(0, sum_layout)), total.to(dtype))


def launch_arguments(x_dtype: torch.dtype, stages: int, ahead: int, sub: int) -> dict:
    a_layout, words_layout = fragment_layouts(64, 4)
    return dict(PAIR_ASM=FRAGMENT_PAIR_ASM[x_dtype], STAGES=stages, AHEAD=ahead, SUB=sub, a_layout=a_layout,
                words_layout=words_layout)


def gemv(x: torch.Tensor, weight, config: tuple) -> torch.Tensor:
    """One row x (1, K) times an int4 PackedWeight (N, K), groups of 64."""
    n, columns = weight.qweight.shape[0], x.shape[1]
    out = x.new_empty(1, n)
    gemv_kernel[(n // OUTPUTS,)](x, out, weight.qweight, weight.scale, weight.offset, n, columns,
                                 **launch_arguments(x.dtype, *config), num_warps=4)
    return out


def compile_offline() -> None:
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    from inspect_kernel import main_loop, tool_output
    names = gemv_kernel.arg_names
    types = {"x_ptr": "*bf16", "out_ptr": "*bf16", "q_ptr": "*i32", "s_ptr": "*bf16", "f_ptr": "*bf16", "N": "i32"}
    aligned = [name for name in types if name != "N"] + ["N"]
    for columns in (4096, 11008):
        for config in [config for config in CONFIGS if (columns // 256) % config[2] == 0]:
            constants = {"K": columns, **launch_arguments(torch.bfloat16, *config)}
            source = GluonASTSource(
                fn=gemv_kernel, signature={name: types.get(name, "constexpr") for name in names},
                constexprs={(names.index(name),): value for name, value in constants.items()},
                attrs={(names.index(name),): [["tt.divisibility", 16]] for name in aligned})
            compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
            usage = tool_output("cuobjdump", compiled.asm["cubin"], "--dump-resource-usage")
            loop = main_loop(tool_output("nvdisasm", compiled.asm["cubin"], "-c"))
            print(json.dumps(dict(columns=columns, config=config, shared_bytes=compiled.metadata.shared,
                                  registers=int(usage.split("REG:")[1].split()[0]),
                                  stack=int(usage.split("STACK:")[1].split()[0]), loop_instructions=len(loop),
                                  per_weight=round(len(loop) / (32 * config[2]), 2))), flush=True)


def main() -> None:
    from profile_decode import replay_seconds, rotated_quantized_weights
    from quantized_decode_kernels import launch_quantized_kernel, reference_product
    shapes = {"q|k|v": (12288, 4096), "o": (4096, 4096), "gate|up": (22016, 4096), "down": (4096, 11008)}
    with torch.no_grad():
        for shape, (n, k) in shapes.items():
            sets, nbytes = rotated_quantized_weights(4, [(n, k)])
            x = torch.randn(1, k, device="cuda", dtype=torch.bfloat16)
            reference = reference_product(x.double(), sets[0])
            shipped = replay_seconds(lambda: [launch_quantized_kernel(x, w) for w in sets]) / len(sets)
            record = dict(shape=shape, shipped_TBps=round(nbytes / len(sets) / shipped / 1e12, 3))
            for config in [config for config in CONFIGS if (k // 256) % config[2] == 0]:
                error = (gemv(x, sets[0][0], config).double() - reference).norm() / reference.norm()
                seconds = replay_seconds(lambda: [gemv(x, w[0], config) for w in sets]) / len(sets)
                record["x".join(map(str, config))] = [round(nbytes / len(sets) / seconds / 1e12, 3),
                                                      round(float(error), 5)]
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    compile_offline() if sys.argv[1:] == ["compile"] else main()
