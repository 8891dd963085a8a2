"""Prepared for the next session (2026-11-28, nineteenth; compiled offline for sm_90 with Triton 3.6 and 3.9, not yet
run on a GPU): quantized_prompt_kernel.py's structure for int8 prompts, whose first token is still 3-7% above bf16's
(its q|k|v and gate|up tiles take 41.7 / 75.6 us at 96 rows against cuBLAS's 29.5 / 48).

int8 rows (N, K) read as int32 words of four inputs. The A fragment over (output, word, byte): input k = 4 word + byte,
so a thread's pair of neighbouring inputs is bytes 0-1 or 2-3 (lane bit k2) of the words whose lowest bit is its
lane bit k4. Each pair becomes the two codes exactly in bf16 (`pair_asm`): a byte permute puts the bytes in the two
halves, the low nibbles go into 128.0's mantissa and the high nibbles, their sign bit flipped, into 128.0's as well;
16 x high - 2304 by one multiply-add and + low by one add give the signed code (every intermediate an integer bf16
holds exactly). fp16: the whole flipped byte into 1024.0's mantissa and one subtraction. The row's scale multiplies
the accumulator once, after the loop (as the Triton tiles do).

    python benchmarks/results/quantized_decoding_2026-11-28f/next_gluon_int8.py compile   # offline, sm_90
    python benchmarks/results/quantized_decoding_2026-11-28f/next_gluon_int8.py           # on an sm_90 GPU
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
from quantized_prompt_kernel import _async_load, _thread_barrier, fragment_layouts  # noqa: E402

STEP = ttgl.constexpr(64)  # inputs a step: 16 words of four codes a row
BLOCK_OUT, BLOCK_ROWS, WARPS, STAGES = 64, 128, 4, 4


def pair_asm(kind: str) -> str:
    """$0: the codes of bytes 2p, 2p + 1 of word $1 (p = $3: 0 or 1) as a `kind` pair, exactly ($2, $4: pack=2's
    second copies)."""
    lines = ["{", ".reg .b32 t, s, h, l, zero, c, sixteen;", "mov.b32 zero, 0;",
             "mad.lo.u32 s, $3, 0x0202, 0x4140;",
             "prmt.b32 t, $1, zero, s;"]  # bytes 2p and 2p + 1 into the low bytes of the two halves, zeros above
    if kind == "f16":  # 1024 + (code + 128), then - 1152
        lines += ["lop3.b32 t, t, 0x00800080, 0x64006400, 0xBE;",  # (a ^ b) | c: sign flipped, into 1024's mantissa
                  "mov.b32 c, 0x64806480;", "sub.rn.f16x2 $0, t, c;"]
    else:  # low = 128 + low nibble, high = 128 + (high nibble ^ 8); code = 16 high - 2304 + low
        lines += ["lop3.b32 l, t, 0x000F000F, 0x43004300, 0xEA;",  # (a & b) | c
                  "shr.u32 h, t, 4;",
                  "lop3.b32 h, h, 0x000F000F, 0x43084308, 0x6A;",  # (a & b) ^ c
                  "mov.b32 sixteen, 0x41804180;", "mov.b32 c, 0xC510C510;",  # 16 and -2304
                  "fma.rn.bf16x2 h, h, sixteen, c;",  # 16 (high nibble ^ 8) - 256: exact
                  "add.rn.bf16x2 $0, h, l;"]  # the code, exact
    return "\n".join(lines + ["}"])


@gluon.jit
def _copy_step(x_smem, w_smem, x_ptr, q_ptr, x_offsets, x_rows, word_offsets, step, buffer):
    _async_load(x_smem.index(buffer), x_ptr + x_offsets + step * STEP, mask=x_rows)
    _async_load(w_smem.index(buffer), q_ptr + word_offsets + step * (STEP // 4))
    async_copy.commit_group()


@gluon.jit
def int8_prompt_kernel(x_ptr, out_ptr, q_ptr, s_ptr, M, N, K: ttgl.constexpr, PAIR_ASM: ttgl.constexpr,
                       BLOCK_OUT: ttgl.constexpr, BLOCK_ROWS: ttgl.constexpr, WARPS: ttgl.constexpr,
                       STAGES: ttgl.constexpr, a_layout: ttgl.constexpr, words_layout: ttgl.constexpr):
    """out[m, n] = (x @ codes.T)[m, n] * scale[n] for one weight, BLOCK_OUT outputs n and BLOCK_ROWS rows m."""
    WORDS: ttgl.constexpr = STEP // 4
    STEPS: ttgl.constexpr = K // STEP
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
        _copy_step(x_smem, w_smem, x_ptr, q_ptr, x_offsets, x_rows, word_offsets, ahead, ahead)
    for step in range(STEPS):
        buffer = step % STAGES
        async_copy.wait_group(AHEAD - 1)
        fence_async_shared()
        _thread_barrier()
        _copy_step(x_smem, w_smem, x_ptr, q_ptr, x_offsets, x_rows, word_offsets,
                   ttgl.minimum(step + AHEAD, STEPS - 1), (step + AHEAD) % STAGES)
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
    ttgl.store(out_ptr + rows[None, :] * N + columns[:, None], (accumulator * scale[:, None]).to(dtype),
               mask=(rows < M)[None, :])


def launch_arguments(dtype: torch.dtype) -> dict:
    a_layout, words_layout = fragment_layouts(BLOCK_OUT, WARPS, inputs_per_word=4)
    return dict(PAIR_ASM=pair_asm("bf16" if dtype == torch.bfloat16 else "f16"), BLOCK_OUT=BLOCK_OUT,
                BLOCK_ROWS=BLOCK_ROWS, WARPS=WARPS, STAGES=STAGES, a_layout=a_layout, words_layout=words_layout)


def int8_product(x: torch.Tensor, qweight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    rows, columns = x.shape
    n = qweight.shape[0]
    out = x.new_empty(rows, n)
    int8_prompt_kernel[(n // BLOCK_OUT, triton.cdiv(rows, BLOCK_ROWS))](
        x, out, qweight.view(torch.int32), scale.reshape(-1), rows, n, columns, **launch_arguments(x.dtype),
        num_warps=WARPS)
    return out


def compile_offline() -> None:
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    from inspect_kernel import main_loop, tool_output
    names = int8_prompt_kernel.arg_names
    for dtype, torch_dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        types = {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "q_ptr": "*i32", "s_ptr": f"*{dtype}", "M": "i32",
                 "N": "i32"}
        aligned = [name for name, kind in types.items() if kind.startswith("*") or name == "N"]
        constants = {"K": 4096, **launch_arguments(torch_dtype)}
        source = GluonASTSource(
            fn=int8_prompt_kernel, signature={name: types.get(name, "constexpr") for name in names},
            constexprs={(names.index(name),): value for name, value in constants.items()},
            attrs={(names.index(name),): [["tt.divisibility", 16]] for name in aligned})
        compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": WARPS})
        usage = tool_output("cuobjdump", compiled.asm["cubin"], "--dump-resource-usage")
        sass = tool_output("nvdisasm", compiled.asm["cubin"], "-c")
        loop = main_loop(sass)
        print(json.dumps(dict(dtype=dtype, shared_bytes=compiled.metadata.shared,
                              registers=int(usage.split("REG:")[1].split()[0]),
                              stack=int(usage.split("STACK:")[1].split()[0]), loop_instructions=len(loop),
                              weights_a_thread=BLOCK_OUT * STEP.value // (32 * WARPS),
                              register_operand="gdesc" in sass and " R" in sass.split("HGMMA")[1][:40])),
              flush=True)


def main() -> None:
    from profile_decode import replay_seconds, rotated_quantized_weights
    from quantized_decode_kernels import launch_quantized_kernel, reference_product
    shapes = {"q|k|v": (12288, 4096), "gate|up": (22016, 4096)}
    with torch.no_grad():
        for shape, (n, k) in shapes.items():
            sets, _ = rotated_quantized_weights(8, [(n, k)])
            for rows in (96, 128, 256):
                for dtype in (torch.bfloat16, torch.float16):
                    x = torch.randn(rows, k, device="cuda", dtype=dtype)
                    weight = sets[0][0]
                    reference = reference_product(x.double(), sets[0])
                    error = (int8_product(x, weight.qweight, weight.scale).double() - reference).norm() / (
                        reference.norm())
                    ours = replay_seconds(lambda: [int8_product(x, w[0].qweight, w[0].scale) for w in sets]) / 6
                    shipped = replay_seconds(lambda: [launch_quantized_kernel(x, w) for w in sets]) / 6
                    print(json.dumps(dict(shape=shape, rows=rows, dtype=str(dtype), shipped_us=round(shipped * 1e6, 2),
                                          gluon_us=round(ours * 1e6, 2), relative_error=round(float(error), 5))),
                          flush=True)


if __name__ == "__main__":
    compile_offline() if sys.argv[1:] == ["compile"] else main()
