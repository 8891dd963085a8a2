"""The Gluon int4 prompt tile of the eighteenth session (`../quantized_decoding_2026-11-28e/next_gluon.py`), measured
in this session's `h.sh`: exact, but 64-74 us for q|k|v at 32-128 rows against the shipped 27-49, nearly the same at
32 rows as at 128, so each step waited on its loads and dequantization rather than the tensor cores: one 4-warp
program an SM (254 registers) dequantizes 8,192 weights a step with one warp a scheduler.

Here the program has 4 or 8 warps and tiles of 64 or 128 outputs, and steps of one or two groups, so that the
dequantization is spread over more warps (8 warps: 64 accumulator registers a thread, two programs an SM) and a step's
barrier and wgmma wait are paid for more weights. Each configuration is timed against the shipped launch and bf16
cuBLAS on the same rows (CUDA-graph replays, six weight copies rotated).

    python benchmarks/results/quantized_decoding_2026-11-28f/next_gluon_warps.py compile   # offline: sm_90 resources
    python benchmarks/results/quantized_decoding_2026-11-28f/next_gluon_warps.py           # on an sm_90 GPU
"""
import json
import sys

import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as ttgl
from triton.experimental.gluon.language.nvidia.hopper import fence_async_shared, warpgroup_mma, warpgroup_mma_wait

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from quantized_decode_kernels import BF16_PAIR_WEIGHTS_ASM, PAIR_WEIGHTS_CONSTRAINTS  # noqa: E402

GROUP = 64
# (BLOCK_M, BLOCK_N, BLOCK_K, warps, most registers a thread: 128 lets two 8-warp programs share an SM)
CONFIGS = [(128, 128, 64, 4, 255), (128, 128, 64, 8, 255), (128, 128, 64, 8, 128), (128, 128, 128, 8, 255),
           (128, 64, 64, 8, 255), (128, 64, 128, 8, 128), (64, 128, 64, 4, 255), (64, 128, 64, 4, 128)]
# every thread of the program waits here (Gluon's name for it until Triton 3.6; `barrier` later)
_thread_barrier = getattr(ttgl, "thread_barrier", None) or ttgl.barrier


@gluon.jit
def _pairs_in_order(p0, p1, p2, p3, p4, p5, p6, p7):
    """As quantized_decode_kernels._pairs_in_order: pair p at flat index p of three new minor dimensions."""
    return ttgl.join(ttgl.join(ttgl.join(p0, p4), ttgl.join(p2, p6)), ttgl.join(ttgl.join(p1, p5), ttgl.join(p3, p7)))


@gluon.jit
def _step_words(q_ptr, s_ptr, f_ptr, first_row, N, step, K: ttgl.constexpr, BLOCK_N: ttgl.constexpr,
                BLOCK_K: ttgl.constexpr, words_layout: ttgl.constexpr):
    """Rows first_row..'s int4 words for inputs step * BLOCK_K.. in 64-bit pairs (16 inputs each), and each pair's
    group's scale and offset (16-bit patterns); nothing past the last step (`step` may be one past it: prefetching)."""
    PAIRS: ttgl.constexpr = BLOCK_K // 16
    inside = step < K // BLOCK_K
    rows = first_row + ttgl.arange(0, BLOCK_N, layout=ttgl.SliceLayout(1, words_layout))
    pairs = step * PAIRS + ttgl.arange(0, PAIRS, layout=ttgl.SliceLayout(0, words_layout))
    packed = ttgl.load(q_ptr.to(ttgl.pointer_type(ttgl.int64)) + rows[:, None] * (K // 16) + pairs[None, :],
                       mask=inside, other=0)
    groups = pairs * 16 // 64
    where = groups[None, :] * N + rows[:, None]
    scale = ttgl.load(s_ptr + where, mask=inside, other=0).to(ttgl.uint16, bitcast=True)
    offset = ttgl.load(f_ptr + where, mask=inside, other=0).to(ttgl.uint16, bitcast=True)
    return packed, scale, offset


@gluon.jit
def _weights(packed, scale, offset, BLOCK_N: ttgl.constexpr, BLOCK_K: ttgl.constexpr):
    """The bf16 weights of `_step_words`' words, (BLOCK_N, BLOCK_K) in the inputs' order, by the shipped tiles' PTX."""
    even, odd = packed.to(ttgl.int32), (packed >> 32).to(ttgl.int32)
    p0, p1, p2, p3, p4, p5, p6, p7 = ttgl.inline_asm_elementwise(
        BF16_PAIR_WEIGHTS_ASM, PAIR_WEIGHTS_CONSTRAINTS, [even, odd, scale, offset],
        dtype=(ttgl.uint32, ttgl.uint32, ttgl.uint32, ttgl.uint32, ttgl.uint32, ttgl.uint32, ttgl.uint32, ttgl.uint32),
        is_pure=True, pack=1)
    pairs_tile = _pairs_in_order(p0, p1, p2, p3, p4, p5, p6, p7)
    low = (pairs_tile & 0xFFFF).to(ttgl.uint16).to(ttgl.bfloat16, bitcast=True)
    high = (pairs_tile >> 16).to(ttgl.uint16).to(ttgl.bfloat16, bitcast=True)
    return ttgl.reshape(ttgl.join(low, high), [BLOCK_N, BLOCK_K])


@gluon.jit
def gluon_int4_rows_kernel(x_ptr, out_ptr, q_ptr, s_ptr, f_ptr, M, N, K: ttgl.constexpr, BLOCK_M: ttgl.constexpr,
                           BLOCK_N: ttgl.constexpr, BLOCK_K: ttgl.constexpr, WARPS: ttgl.constexpr):
    """out[m, n] = x @ dequantized(w).T for one (BLOCK_M, BLOCK_N) tile, int4 groups of 64 inputs; WARPS warps
    share each step's dequantization (each thread a run of one row's pairs) and the wgmma (16 accumulator rows a warp
    in turn)."""
    PAIRS: ttgl.constexpr = BLOCK_K // 16
    THREADS_K: ttgl.constexpr = 32 * WARPS // BLOCK_N  # threads sharing one row's pairs
    words_layout: ttgl.constexpr = ttgl.BlockedLayout([1, PAIRS // THREADS_K], [32 // THREADS_K, THREADS_K],
                                                      [WARPS, 1], [1, 0])
    x_layout: ttgl.constexpr = ttgl.BlockedLayout([1, 8], [4, 8], [WARPS, 1], [1, 0])
    mma_layout: ttgl.constexpr = ttgl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[WARPS, 1],
                                                             instr_shape=[16, BLOCK_N, 16])
    x_shared: ttgl.constexpr = ttgl.NVMMASharedLayout.get_default_for([BLOCK_M, BLOCK_K], ttgl.bfloat16)
    w_shared: ttgl.constexpr = ttgl.NVMMASharedLayout.get_default_for([BLOCK_N, BLOCK_K], ttgl.bfloat16)
    first_row = ttgl.program_id(0) * BLOCK_N
    first_m = ttgl.program_id(1) * BLOCK_M
    x_buffers = ttgl.allocate_shared_memory(ttgl.bfloat16, [2, BLOCK_M, BLOCK_K], x_shared)
    w_buffers = ttgl.allocate_shared_memory(ttgl.bfloat16, [2, BLOCK_N, BLOCK_K], w_shared)
    m = first_m + ttgl.arange(0, BLOCK_M, layout=ttgl.SliceLayout(1, x_layout))
    inputs = ttgl.arange(0, BLOCK_K, layout=ttgl.SliceLayout(0, x_layout))
    accumulator = ttgl.zeros([BLOCK_M, BLOCK_N], ttgl.float32, mma_layout)
    # each step's words and inputs are loaded one step ahead (Gluon pipelines nothing by itself)
    packed, scale, offset = _step_words(q_ptr, s_ptr, f_ptr, first_row, N, 0, K, BLOCK_N, BLOCK_K, words_layout)
    x = ttgl.load(x_ptr + m[:, None] * K + inputs[None, :], mask=(m < M)[:, None], other=0.0)
    for step in range(K // BLOCK_K):
        buffer = step % 2
        weights = _weights(packed, scale, offset, BLOCK_N, BLOCK_K)
        # the wgmma two steps back read these buffers; the wait below left at most one (the last step's) in flight
        w_buffers.index(buffer).store(weights)
        x_buffers.index(buffer).store(x)
        packed, scale, offset = _step_words(q_ptr, s_ptr, f_ptr, first_row, N, step + 1, K, BLOCK_N, BLOCK_K,
                                            words_layout)
        x = ttgl.load(x_ptr + m[:, None] * K + ((step + 1) * BLOCK_K + inputs)[None, :],
                      mask=((m < M)[:, None]) & (step + 1 < K // BLOCK_K), other=0.0)
        fence_async_shared()
        _thread_barrier()
        accumulator = warpgroup_mma(x_buffers.index(buffer), w_buffers.index(buffer).permute((1, 0)), accumulator,
                                    is_async=True)
        accumulator = warpgroup_mma_wait(num_outstanding=1, deps=[accumulator])
    accumulator = warpgroup_mma_wait(num_outstanding=0, deps=[accumulator])
    rows_out = first_m + ttgl.arange(0, BLOCK_M, layout=ttgl.SliceLayout(1, mma_layout))
    columns = first_row + ttgl.arange(0, BLOCK_N, layout=ttgl.SliceLayout(0, mma_layout))
    ttgl.store(out_ptr + rows_out[:, None] * N + columns[None, :], accumulator.to(ttgl.bfloat16),
               mask=(rows_out < M)[:, None])


def gluon_product(x: torch.Tensor, weight, config: tuple) -> torch.Tensor:
    qweight, scale, offset = weight
    block_m, block_n, block_k, warps, registers = config
    rows, columns = x.shape
    n = qweight.shape[0]
    out = x.new_empty(rows, n)
    gluon_int4_rows_kernel[(n // block_n, triton.cdiv(rows, block_m))](
        x, out, qweight, scale, offset, rows, n, columns, block_m, block_n, block_k, warps, num_warps=warps,
        maxnreg=registers)
    return out


def compile_offline() -> None:
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    from inspect_kernel import tool_output
    names = gluon_int4_rows_kernel.arg_names
    types = {"x_ptr": "*bf16", "out_ptr": "*bf16", "q_ptr": "*i32", "s_ptr": "*bf16", "f_ptr": "*bf16", "M": "i32",
             "N": "i32"}
    aligned = [name for name, kind in types.items() if kind.startswith("*") or name == "N"]
    for block_m, block_n, block_k, warps, most_registers in CONFIGS:
        constants = {"K": 4096, "BLOCK_M": block_m, "BLOCK_N": block_n, "BLOCK_K": block_k, "WARPS": warps}
        source = GluonASTSource(
            fn=gluon_int4_rows_kernel, signature={name: types.get(name, "constexpr") for name in names},
            constexprs={(names.index(name),): value for name, value in constants.items()},
            attrs={(names.index(name),): [["tt.divisibility", 16]] for name in aligned})
        compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": warps,
                                                                                "maxnreg": most_registers})
        usage = tool_output("cuobjdump", compiled.asm["cubin"], "--dump-resource-usage")
        print(json.dumps(dict(config=[block_m, block_n, block_k, warps, most_registers], shared_bytes=compiled.metadata.shared,
                              registers=int(usage.split("REG:")[1].split()[0]),
                              stack=int(usage.split("STACK:")[1].split()[0]),
                              wgmma_waits=[line.split("pendings = ")[1][:1]
                                           for line in compiled.asm["ttgir"].splitlines()
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
                    error = (gluon_product(x, sets[0][0], config).float() - reference).norm() / reference.norm()
                    ours = replay_seconds(lambda: [gluon_product(x, w[0], config) for w in sets]) / 6 * 1e6
                    record["x".join(map(str, config))] = [round(ours, 2), round(float(error), 5)]
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    compile_offline() if sys.argv[1:] == ["compile"] else main()
