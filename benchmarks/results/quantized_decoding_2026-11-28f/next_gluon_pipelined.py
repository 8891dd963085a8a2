"""int4 prompt products (w @ x.T, up to 128 rows) in Gluon, the dequantized weights as wgmma's left operand in
registers (as `next_gluon_registers.py`) and every operand brought in by asynchronous copies several steps ahead.

`next_gluon_registers.py` (`k.sh`) took 45-55 us for q|k|v whatever its tiles and rows: each step waited on loads
issued one step before (registers), so the loop ran at the memory's latency. Here the words, scales, offsets and
inputs of step s + STAGES - 2 are copied (cp.async) into a ring of STAGES shared buffers while step s is dequantized
and multiplied; the buffer a copy overwrites was last read two steps before, by wgmmas every warp group has waited
for at the barrier that precedes the copy. `l.sh` ran this with the A fragment "kept alive" through the wait (`deps`):
36-53 us where the shipped launch takes 48-71, but wrong: the wait's operands are the fragment's 16-bit halves, and
ptxas gave the next step's words the packed 32-bit registers the wgmma in flight was reading (the SASS). So now the
weights either stay in registers with each wgmma waited for at once, or are stored to one of two shared buffers
(the eighteenth session's tile, with this pipeline) and one wgmma stays in flight.

    python benchmarks/results/quantized_decoding_2026-11-28f/next_gluon_pipelined.py compile   # offline, sm_90
    python benchmarks/results/quantized_decoding_2026-11-28f/next_gluon_pipelined.py           # on an sm_90 GPU
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

GROUP = ttgl.constexpr(64)  # inputs a step: one group's words (8 words of 8 codes) for each output
# (outputs a program, rows a program, warps, shared buffers, weights in registers: else stored to shared memory)
CONFIGS = [(64, 128, 4, 4, True), (64, 64, 4, 6, True), (64, 128, 4, 4, False), (64, 128, 4, 5, False),
           (64, 64, 4, 6, False), (128, 128, 8, 4, False), (128, 64, 8, 5, False), (128, 128, 8, 5, False)]
# every thread of the program waits here (Gluon's name for it until Triton 3.6; `barrier` later)
_thread_barrier = getattr(ttgl, "thread_barrier", None) or ttgl.barrier

# One pair of weights from a word: $1 the word (twice: pack=2 hands each of the pair its own copy), $3 the shift (4 x
# the lane's pair), $5 and $6 the group's scale and offset in both halves; $0 the two weights in bf16 as
# dequantize() gives them (codes into 128.0's mantissa, 128 taken away exactly, then code * scale + offset).
PAIR_ASM = ttgl.constexpr("\n".join([
    "{", ".reg .b32 t, w, one, bias;",
    "mov.b32 one, 0x3F803F80;", "mov.b32 bias, 0xC300C300;",
    "shr.u32 t, $1, $3;",
    "lop3.b32 w, t, 0x000F000F, 0x43004300, 0xEA;",
    "fma.rn.bf16x2 w, w, one, bias;",
    "fma.rn.bf16x2 $0, w, $5, $6;", "}"]))
PAIR_CONSTRAINTS = ttgl.constexpr("=r,r,r,r,r,r,r")


def fragment_layouts(outputs: int, warps: int) -> tuple:
    """wgmma's A-operand layout for (outputs, GROUP) bf16 (k_width 2; `to_linear_layout` of Triton 3.6 printed it:
    registers k1, m8, k8, k16, k32 then m beyond the warps; lanes k2, k4, m1, m2, m4; warps m16, m32, ..), its
    registers taken in another order (a renaming, no data moves), and the same layout over (outputs, word, input of
    the word), input k = 8 word + i."""
    register_m = [[m, 0] for m in (2 ** e for e in range(20)) if 16 * warps <= m < outputs]
    # the words' registers in the order of their inputs (one vector load a row) before the fragment's second row
    reg = [[0, 1], [0, 8], [0, 16], [0, 32], [8, 0]] + register_m
    lane = [[0, 2], [0, 4], [1, 0], [2, 0], [4, 0]]
    warp = [[16 * 2 ** e, 0] for e in range(warps.bit_length() - 1)]

    def split(bases):
        return [[m, k // 8, 0] if k >= 8 else [m, 0, k] for m, k in bases]

    return (ttgl.DistributedLinearLayout(reg, lane, warp, [], [outputs, GROUP.value]),
            ttgl.DistributedLinearLayout(split(reg), split(lane), split(warp), [], [outputs, GROUP.value // 8, 8]))


@gluon.jit
def _copy_step(x_smem, w_smem, s_smem, f_smem, x_ptr, q_ptr, s_ptr, f_ptr, x_offsets, x_rows, word_offsets,
               out_offsets, N, step, buffer, WORDS: ttgl.constexpr):
    """Asynchronous copies of one step's inputs, words, scales and offsets into shared buffer `buffer`."""
    async_copy.async_copy_global_to_shared(x_smem.index(buffer), x_ptr + x_offsets + step * GROUP, mask=x_rows)
    async_copy.async_copy_global_to_shared(w_smem.index(buffer), q_ptr + word_offsets + step * WORDS)
    async_copy.async_copy_global_to_shared(s_smem.index(buffer), s_ptr + step * N + out_offsets)
    async_copy.async_copy_global_to_shared(f_smem.index(buffer), f_ptr + step * N + out_offsets)
    async_copy.commit_group()


@gluon.jit
def gluon_int4_rows_kernel(x_ptr, out_ptr, q_ptr, s_ptr, f_ptr, M, N, K: ttgl.constexpr, BLOCK_OUT: ttgl.constexpr,
                           BLOCK_ROWS: ttgl.constexpr, WARPS: ttgl.constexpr, STAGES: ttgl.constexpr,
                           A_IN_REGISTERS: ttgl.constexpr, a_layout: ttgl.constexpr, words_layout: ttgl.constexpr):
    """out[m, n] = x @ dequantized(w).T for outputs n of one BLOCK_OUT tile and rows m of one BLOCK_ROWS tile."""
    WORDS: ttgl.constexpr = GROUP // 8
    STEPS: ttgl.constexpr = K // GROUP
    AHEAD: ttgl.constexpr = STAGES - 2  # steps copied ahead of the one multiplied
    mma_layout: ttgl.constexpr = ttgl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[WARPS, 1],
                                                             instr_shape=[16, BLOCK_ROWS, 16])
    dot_a: ttgl.constexpr = ttgl.DotOperandLayout(operand_index=0, parent=mma_layout, k_width=2)
    x_layout: ttgl.constexpr = ttgl.BlockedLayout([1, 8], [4, 8], [WARPS, 1], [1, 0])
    words_copy: ttgl.constexpr = ttgl.BlockedLayout([1, 4], [16, 2], [WARPS, 1], [1, 0])
    pairs_copy: ttgl.constexpr = ttgl.BlockedLayout([2], [32], [WARPS], [0])
    x_shared: ttgl.constexpr = ttgl.NVMMASharedLayout.get_default_for([BLOCK_ROWS, GROUP], ttgl.bfloat16)
    plain: ttgl.constexpr = ttgl.SwizzledSharedLayout(1, 1, 1, [1, 0])
    plain_1d: ttgl.constexpr = ttgl.SwizzledSharedLayout(1, 1, 1, [0])
    row_words: ttgl.constexpr = ttgl.SliceLayout(2, words_layout)
    first_out = ttgl.program_id(0) * BLOCK_OUT
    first_m = ttgl.program_id(1) * BLOCK_ROWS
    x_smem = ttgl.allocate_shared_memory(ttgl.bfloat16, [STAGES, BLOCK_ROWS, GROUP], x_shared)
    w_smem = ttgl.allocate_shared_memory(ttgl.int32, [STAGES, BLOCK_OUT, WORDS], plain)
    s_smem = ttgl.allocate_shared_memory(ttgl.bfloat16, [STAGES, BLOCK_OUT], plain_1d)
    f_smem = ttgl.allocate_shared_memory(ttgl.bfloat16, [STAGES, BLOCK_OUT], plain_1d)
    a_shared: ttgl.constexpr = ttgl.NVMMASharedLayout.get_default_for([BLOCK_OUT, GROUP], ttgl.bfloat16)
    a_smem = ttgl.allocate_shared_memory(ttgl.bfloat16, [2, BLOCK_OUT, GROUP], a_shared)
    m = first_m + ttgl.arange(0, BLOCK_ROWS, layout=ttgl.SliceLayout(1, x_layout))
    inputs = ttgl.arange(0, GROUP, layout=ttgl.SliceLayout(0, x_layout))
    x_offsets = m[:, None] * K + inputs[None, :]
    x_rows = ttgl.broadcast((m < M)[:, None], x_offsets)[0]
    copy_outputs = first_out + ttgl.arange(0, BLOCK_OUT, layout=ttgl.SliceLayout(1, words_copy))
    copy_words = ttgl.arange(0, WORDS, layout=ttgl.SliceLayout(0, words_copy))
    word_offsets = copy_outputs[:, None] * (K // 8) + copy_words[None, :]
    out_offsets = first_out + ttgl.arange(0, BLOCK_OUT, layout=pairs_copy)
    lane_pair = ttgl.arange(0, 8, layout=ttgl.SliceLayout(0, ttgl.SliceLayout(0, words_layout)))
    shifts = ttgl.expand_dims(ttgl.expand_dims(4 * ((lane_pair // 2) % 4), 0), 0)
    accumulator = ttgl.zeros([BLOCK_OUT, BLOCK_ROWS], ttgl.float32, mma_layout)
    for ahead in ttgl.static_range(AHEAD):
        _copy_step(x_smem, w_smem, s_smem, f_smem, x_ptr, q_ptr, s_ptr, f_ptr, x_offsets, x_rows, word_offsets,
                   out_offsets, N, ahead, ahead, WORDS)
    for step in range(STEPS):
        buffer = step % STAGES
        async_copy.wait_group(AHEAD - 1)  # this step's copies have landed (AHEAD groups were issued after it)
        fence_async_shared()
        _thread_barrier()  # ... for every thread, and every warp group has waited for the wgmma two steps back
        _copy_step(x_smem, w_smem, s_smem, f_smem, x_ptr, q_ptr, s_ptr, f_ptr, x_offsets, x_rows, word_offsets,
                   out_offsets, N, ttgl.minimum(step + AHEAD, STEPS - 1), (step + AHEAD) % STAGES, WORDS)
        packed = w_smem.index(buffer).load(row_words)
        scale = s_smem.index(buffer).load(ttgl.SliceLayout(1, row_words))
        offset = f_smem.index(buffer).load(ttgl.SliceLayout(1, row_words))
        word_of_each, shift_of_each = ttgl.broadcast(ttgl.expand_dims(packed, 2), shifts)
        weights = ttgl.inline_asm_elementwise(
            PAIR_ASM, PAIR_CONSTRAINTS,
            [word_of_each, shift_of_each,
             ttgl.broadcast(ttgl.expand_dims(ttgl.expand_dims(scale, 1), 2), word_of_each)[0],
             ttgl.broadcast(ttgl.expand_dims(ttgl.expand_dims(offset, 1), 2), word_of_each)[0]],
            dtype=ttgl.bfloat16, is_pure=True, pack=2)
        weights = ttgl.reshape(weights, [BLOCK_OUT, GROUP])
        if A_IN_REGISTERS:
            # ptxas gave the next step's words the registers of the A fragment still in flight (`k.sh`, the
            # SASS): so each wgmma is waited for at once, no overlap (a check of everything else)
            a = ttgl.convert_layout(ttgl.convert_layout(weights, a_layout), dot_a)
            accumulator = warpgroup_mma(a, x_smem.index(buffer).permute((1, 0)), accumulator, is_async=True)
            accumulator, a_in_flight = warpgroup_mma_wait(num_outstanding=0, deps=[accumulator, a])
        else:
            # two shared buffers: the wgmma that read this one (two steps back) was waited for before the barrier
            a_smem.index(step % 2).store(weights)
            fence_async_shared()
            _thread_barrier()
            accumulator = warpgroup_mma(a_smem.index(step % 2), x_smem.index(buffer).permute((1, 0)), accumulator,
                                        is_async=True)
            accumulator = warpgroup_mma_wait(num_outstanding=1, deps=[accumulator])
    accumulator = warpgroup_mma_wait(num_outstanding=0, deps=[accumulator])
    async_copy.wait_group(0)
    out_columns = first_out + ttgl.arange(0, BLOCK_OUT, layout=ttgl.SliceLayout(1, mma_layout))
    out_rows = first_m + ttgl.arange(0, BLOCK_ROWS, layout=ttgl.SliceLayout(0, mma_layout))
    ttgl.store(out_ptr + out_rows[None, :] * N + out_columns[:, None], accumulator.to(ttgl.bfloat16),
               mask=(out_rows < M)[None, :])


def launch_arguments(config: tuple) -> dict:
    outputs, rows, warps, stages, in_registers = config
    a_layout, words_layout = fragment_layouts(outputs, warps)
    return dict(BLOCK_OUT=outputs, BLOCK_ROWS=rows, WARPS=warps, STAGES=stages, A_IN_REGISTERS=in_registers,
                a_layout=a_layout, words_layout=words_layout)


def gluon_product(x: torch.Tensor, weight, config: tuple) -> torch.Tensor:
    qweight, scale, offset = weight
    rows, columns = x.shape
    n = qweight.shape[0]
    out = x.new_empty(rows, n)
    gluon_int4_rows_kernel[(n // config[0], triton.cdiv(rows, config[1]))](
        x, out, qweight, scale, offset, rows, n, columns, **launch_arguments(config), num_warps=config[2])
    return out


def compile_offline() -> None:
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    from inspect_kernel import tool_output
    names = gluon_int4_rows_kernel.arg_names
    types = {"x_ptr": "*bf16", "out_ptr": "*bf16", "q_ptr": "*i32", "s_ptr": "*bf16", "f_ptr": "*bf16", "M": "i32",
             "N": "i32"}
    aligned = [name for name, kind in types.items() if kind.startswith("*") or name == "N"]
    for config in CONFIGS:
        constants = {"K": 4096, **launch_arguments(config)}
        source = GluonASTSource(
            fn=gluon_int4_rows_kernel, signature={name: types.get(name, "constexpr") for name in names},
            constexprs={(names.index(name),): value for name, value in constants.items()},
            attrs={(names.index(name),): [["tt.divisibility", 16]] for name in aligned})
        compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                                  options={"num_warps": config[2]})
        usage = tool_output("cuobjdump", compiled.asm["cubin"], "--dump-resource-usage")
        ttgir = compiled.asm["ttgir"]
        sass = tool_output("cuobjdump", compiled.asm["cubin"], "-sass")
        print(json.dumps(dict(config=config, shared_bytes=compiled.metadata.shared,
                              registers=int(usage.split("REG:")[1].split()[0]),
                              stack=int(usage.split("STACK:")[1].split()[0]),
                              layout_conversions=ttgir.count("convert_layout"),
                              sass={op: sass.count(op) for op in ("LDS", "STS", "HGMMA", "LDG", "HFMA2", "BAR")},
                              wgmma_waits=[line.split("pendings = ")[1][:1] for line in ttgir.splitlines()
                                           if "warp_group_dot_wait" in line])), flush=True)


def main() -> None:
    from profile_decode import replay_seconds, rotated_quantized_weights
    from quantized_decode_kernels import launch_quantized_kernel, reference_product
    shapes = {"q|k|v": (12288, 4096), "gate|up": (22016, 4096), "o": (4096, 4096)}
    with torch.no_grad():
        for shape, (n, k) in shapes.items():
            sets, _ = rotated_quantized_weights(4, [(n, k)])
            dense = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for _ in sets]
            for rows in (32, 96, 128):
                x = torch.randn(rows, k, device="cuda", dtype=torch.bfloat16)
                reference = reference_product(x, sets[0]).float()
                shipped = replay_seconds(lambda: [launch_quantized_kernel(x, w) for w in sets]) / 6 * 1e6
                cublas = replay_seconds(lambda: [x @ w.T for w in dense]) / 6 * 1e6
                record = dict(shape=shape, rows=rows, shipped_us=round(shipped, 2), cublas_bf16_us=round(cublas, 2))
                for config in CONFIGS:
                    if config[1] < rows:
                        continue
                    error = (gluon_product(x, sets[0][0], config).float() - reference).norm() / reference.norm()
                    ours = replay_seconds(lambda: [gluon_product(x, w[0], config) for w in sets]) / 6 * 1e6
                    record["x".join(map(str, config))] = [round(ours, 2), round(float(error), 5)]
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    compile_offline() if sys.argv[1:] == ["compile"] else main()
