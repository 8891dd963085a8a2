"""The quantized decode kernels (quantized_decode_kernels.py, issue 15) against dequantize-then-matmul, run by Triton's
interpreter on the CPU (the same kernel source the GPU compiles; test_cuda.py checks them compiled; a test here
compiles them for the H100 without one), and the fast path decoding quantized weights."""

import re
import subprocess
import sys

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from conftest import REPO_ROOT, fitting_configs, run_child, tiny_text_config, unrounded_weight
from fast_decoder import LlamaFamilyDecoder, unsupported_reason
from quantized_decode_kernels import (
    PackedWeight, kernel_tiles, packed_weight, quantized_product, reference_product, row_bucket,
)
from weight_quantization import QuantizedLinear, quantize_language_model


# Run in a child process with Triton's interpreter on (it must be on before triton is imported, and the interpreter
# writes kernel outputs through raw pointers: kept out of the test process). One row takes the matrix-vector branch
# (int8's codes becoming floats by conversion or by bit tricks), several the tensor-core branch (x @ w.T or weights
# first, w @ x.T, and with a tile's steps split among three programs, the last without any); 192 inputs end inside a
# block.
INTERPRETED_KERNELS = """
import torch
import quantized_decode_kernels as kernels

def packed(bits, rows, columns):
    return kernels.packed_weight((0.05 * torch.randn(rows, columns)).bfloat16(), bits)

def float32_reference(x, weights):
    # The dequantize-then-matmul product with float32 input, scales and offsets.
    return kernels.reference_product(x.float(), [weight._replace(
        scale=weight.scale.float(), offset=None if weight.offset is None else weight.offset.float())
        for weight in weights])

def packed_weights(bits, columns):
    # Three weights of different sizes, as q|k|v of a grouped-query layer would be.
    torch.manual_seed(bits + columns)
    return [packed(bits, rows, columns) for rows in (64, 128, 192)]

failures = 0
# One row: steps of 128 inputs, and of 1024 (wider than the row: one step, its groups past the end masked).
ONE_ROW_KINDS = ((8, False), (8, True), (4, False))  # (bits, bit_cast)
cases = [(bits, bit_cast, columns, 1, False, block_k, 1) for bits, bit_cast in ONE_ROW_KINDS
         for columns in (256, 192) for block_k in (128, 1024)]
cases += [(bits, False, columns, rows, weights_first, None, 1) for bits in (8, 4) for columns in (256, 192)
          for rows in (3, 20) for weights_first in (False, True)]
cases += [(bits, False, columns, 20, weights_first, 64, 3) for bits in (8, 4) for columns in (256, 192)
          for weights_first in (False, True)]
for bits, bit_cast, columns, rows, weights_first, block_k, split in cases:
    weights = packed_weights(bits, columns)
    # The interpreter computes bfloat16 tensor-core products wrongly (numpy has no bfloat16): float16.
    dtype = torch.bfloat16 if rows == 1 else torch.float16
    x = torch.randn(rows, columns).to(dtype)
    config = {**kernels.kernel_config(rows, bits), "WEIGHTS_FIRST": weights_first, "SPLIT_K": split}
    if rows == 1:
        config["BIT_CAST"] = bit_cast
    if block_k:
        config["BLOCK_K"] = block_k
    ours = kernels.launch_quantized_kernel(x, weights, config).float()
    reference = float32_reference(x, weights)
    # Only the output's rounding (and float32 summation order) may differ: half a step of the dtype.
    step = torch.finfo(dtype).eps * reference.abs().clamp(min=1)
    ok = ours.shape == (rows, 384) and bool(((ours - reference).abs() <= step).all())
    failures += not ok
    print(f"bits={bits} bit_cast={bit_cast} weights_first={weights_first} columns={columns}",
          f"rows={rows} block_k={block_k} split={split}:",
          "ok" if ok else f"max error {float((ours - reference).abs().max())}")
# One row, gate|up with the SiLU gate in the kernel: each product and the gate rounded to bfloat16 (a few steps).
for bits, bit_cast, columns in [(bits, bit_cast, columns) for bits, bit_cast in ONE_ROW_KINDS
                                for columns in (256, 192)]:
    gate, up = packed(bits, 128, columns), packed(bits, 128, columns)
    x = torch.randn(1, columns).bfloat16()
    config = {**kernels.kernel_config(1, bits), "BIT_CAST": bit_cast, "BLOCK_K": 128}
    ours = kernels.launch_quantized_kernel(x, [gate, up], config, gated=True).float()
    products = float32_reference(x, [gate, up])
    reference = torch.nn.functional.silu(products[:, :128]) * products[:, 128:]
    step = torch.finfo(torch.bfloat16).eps * reference.abs().clamp(min=1)
    ok = ours.shape == (1, 128) and bool(((ours - reference).abs() <= 3 * step).all())
    failures += not ok
    print(f"gated bits={bits} bit_cast={bit_cast} columns={columns}:",
          "ok" if ok else f"max error {float((ours - reference).abs().max())}")
print("failures", failures)
"""


def test_kernels_equal_dequantize_then_matmul(tmp_path):
    """Every branch (int8/int4, one row/several, int8's two conversions, x @ w.T and weights first, split tiles, a
    ragged last block, one row's gate|up with the SiLU gate) against the reference."""
    pytest.importorskip("triton")
    output = run_child(INTERPRETED_KERNELS, tmp_path, interpret=True)
    assert output.count(": ok") == 42 and "failures 0" in output, output


# Long prompts' dequantized copy (`dequantized_product`) under the interpreter: stacked weights of three sizes, int8
# and int4 in groups of 64 and 128, 512 inputs (two blocks); float16, which the interpreter rounds as a GPU does.
INTERPRETED_DEQUANTIZED = """
import torch
import quantized_decode_kernels as kernels
from weight_quantization import dequantize

for bits, group in ((8, None), (4, 64), (4, 128)):
    torch.manual_seed(bits)
    options = {"group_size": group} if group else {}
    weights = [kernels.packed_weight((0.05 * torch.randn(rows, 512)).half(), bits, **options)
               for rows in (64, 128, 192)]
    expected = torch.cat([dequantize(qweight=weight.qweight, scale=weight.scale, offset=weight.offset, bits=bits,
                                     group_size=kernels.group_size(weight)) for weight in weights])
    x = torch.randn(7, 512).half()
    equal = torch.equal(kernels.dequantized_weights(weights, torch.float16), expected) and torch.equal(
        kernels.dequantized_product(x, weights), kernels.reference_product(x, weights))
    print(bits, group, "equal" if equal else "differs")
"""


def test_long_prompts_dequantize_the_weights_exactly(tmp_path):
    """The copy long prompts multiply on cuBLAS is dequantize()'s weight bit for bit (the products through F.linear
    equal the reference's), taken from DEQUANTIZED_ROWS rows over inputs of whole blocks."""
    pytest.importorskip("triton")
    from quantized_decode_kernels import DEQUANTIZE_BLOCK, DEQUANTIZED_ROWS, takes_dequantized_product

    output = run_child(INTERPRETED_DEQUANTIZED, tmp_path, interpret=True)
    assert output.count("equal") == 3 and "differs" not in output, output
    inputs = 2 * DEQUANTIZE_BLOCK[1]
    assert takes_dequantized_product(torch.empty(DEQUANTIZED_ROWS, inputs))
    assert not takes_dequantized_product(torch.empty(DEQUANTIZED_ROWS - 1, inputs))
    assert not takes_dequantized_product(torch.empty(DEQUANTIZED_ROWS, inputs + 64))


def packed_weights(bits: int, columns: int) -> list:
    torch.manual_seed(bits + columns)
    return [packed_weight((0.05 * torch.randn(rows, columns)).bfloat16(), bits) for rows in (64, 128, 192)]


def test_several_rows_are_timed_only_among_their_buckets_tiles_that_fit():
    """Autotune's candidates for several rows: the tiles listed for the kind and bucket of rows, an int4 step holding
    whole groups, and no block of output columns straddling two stacked weights (a q|k|v of 576 | 192 | 192 takes
    no 128-wide blocks)."""
    from quantized_decode_kernels import tile_of

    def fitting(bits, rows, group, sizes):
        return [tile_of(config) for config in fitting_configs(bits, rows, group, sizes)]

    assert [row_bucket(rows) for rows in (2, 16, 17, 32, 64, 65, 128, 129, 4000)] == [16, 16, 32, 32, 64, 128, 128,
                                                                                       256, 256]
    for bits in (4, 8):
        for rows in (8, 32, 64, 96, 200):  # every bucket has a tile for any weight the kernels take
            assert fitting(bits, rows, 64 if bits == 4 else 4096, [4096])
            widest = min(row_bucket(rows), 128)  # longer prompts take several 128-row tiles
            assert {tile[1] for tile in fitting(bits, rows, 64 if bits == 4 else 4096, [4096])} <= {widest,
                                                                                                    widest // 2}
    assert (False, 128, 128, 128, 2, 1) in fitting(4, 96, 64, [4096, 1024, 1024])
    assert {tile[-1] for tile in fitting(4, 200, 64, [4096])} == {1}  # long prompts: no float32 partial sums
    assert all(tile[2] <= 64 for tile in fitting(4, 96, 64, [576, 192, 192]))
    assert all(tile[3] % 256 == 0 for tile in fitting(4, 96, 256, [4096]))  # groups of 256: whole groups a step
    assert fitting(4, 96, 512, [4096]) == []  # and kernel_tiles refuses groups that not every bucket holds
    one_group_of_512 = PackedWeight(torch.zeros(64, 64, dtype=torch.int32), torch.zeros(1, 64), torch.zeros(1, 64))
    assert not kernel_tiles([one_group_of_512])


def test_every_autotuner_times_cuda_graph_replays():
    """One row's products (6-40 us on an H200) take less than Python's launch overhead, so timed as launched from
    Python their picks were noise; every autotuner (one row and several; the Gluon one-row kernels' where Gluon is
    at hand) times replays of a captured launch."""
    triton = pytest.importorskip("triton")
    import quantized_decode_kernels as kernels

    if not kernels.REPLAYED:
        pytest.skip(f"Triton {triton.__version__} takes no timing function")
    tuners = [kernels._row_kernel, kernels._residual_norm_row_kernel, kernels._rows_kernel]
    if kernels.row_kernel is not None:
        tuners += [kernels._dp4a_row_kernel, kernels._dp4a_residual_norm_kernel]
    for tuner in tuners:
        assert tuner.do_bench is kernels._replayed_timings


def test_untileable_weights_and_cpu_inputs_take_the_reference():
    weights = packed_weights(4, 256)
    assert kernel_tiles(weights)
    x = torch.randn(2, 256, dtype=torch.bfloat16)
    assert torch.equal(quantized_product(x, weights), reference_product(x, weights))  # CPU
    rows_40 = weights[0]._replace(qweight=weights[0].qweight[:40], scale=weights[0].scale[:, :40],
                                  offset=weights[0].offset[:, :40])
    assert not kernel_tiles([rows_40])  # not whole blocks of rows
    assert not kernel_tiles([weights[0], packed_weights(8, 256)[0]])
    one_word_groups = packed_weight((0.05 * torch.randn(64, 256)).bfloat16(), 4, group_size=8)
    assert not kernel_tiles([one_word_groups])  # one word a group


@pytest.mark.parametrize("bits", [8, 4])
def test_the_fast_decoder_runs_quantized_weights_as_generate_does(bits):
    """The fast path takes --quantize's layers (it refused them before the kernels) and decodes the same greedy
    tokens as `generate` over the same layers."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{**tiny_text_config(), "hidden_size": 64, "intermediate_size": 128,
                                            "head_dim": 16})).eval()
    quantize_language_model(model, bits=bits)
    assert unsupported_reason(model) is None
    prompt = torch.randint(0, 1000, (2, 7))
    with torch.no_grad():
        expected = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=6, min_new_tokens=6,
                                  do_sample=False)[:, 7:]
        decoder = LlamaFamilyDecoder(model, batch_size=2, cache_length=32)
        assert any(isinstance(weight, tuple) for weight in decoder.layers[0])  # the packed bytes, not a weight
        logits = decoder.prefill(model.model.embed_tokens(prompt), torch.ones_like(prompt),
                                 torch.arange(7).expand(2, 7))
        tokens = []
        for step in range(6):
            tokens.append(logits.argmax(-1))
            logits = decoder.step(tokens[-1], torch.full((2,), 7 + step))
    assert torch.equal(torch.stack(tokens, 1), expected)
    assert sum(isinstance(module, QuantizedLinear) for module in model.modules()) == 7 * model.config.num_hidden_layers


COMPILE_FOR_H100 = """
import os
import sys
import torch
import quantized_decode_kernels
sys.path.insert(0, os.path.join(os.path.dirname(quantized_decode_kernels.__file__), "benchmarks"))
from inspect_kernel import compile_kernel

for bits in (4, 8):
    for block_m, block_n, block_k, weights_first in ((1, 4, 512, False), (16, 64, 256, False), (128, 64, 128, True)):
        for bit_cast in ((False, True) if bits == 8 and block_m == 1 else (False,)):
            ptx = compile_kernel(bits=bits, block_m=block_m, block_n=block_n, block_k=block_k, warps=4,
                                 bit_cast=bit_cast, columns=4096, weights_first=weights_first)["ptx"]
            conversions = sum(ptx.count(f"cvt.rn.f32.{kind}") for kind in ("u8", "u16", "u32", "s8", "s16", "s32"))
            print(bits, block_m, bit_cast, conversions)
            assert not (bit_cast and conversions), "the bit-cast kernels convert no integers to floats"
# int4 in 16-bit pairs (inline PTX), the one-row products and several rows' tiles: bf16 and fp16 inputs, for the
# H100 and for the Ampere and Ada cards (sm_80, sm_86, sm_89) the PTX must also assemble for.
for dtype, capability in (("bf16", 90), ("fp16", 90), ("bf16", 80), ("fp16", 86), ("bf16", 89)):
    for block_m, block_n, block_k in ((1, 8, 512), (64, 64, 128)):
        ptx = compile_kernel(bits=4, block_m=block_m, block_n=block_n, block_k=block_k, warps=4, bit_cast=False,
                             columns=4096, dtype=dtype, capability=capability)["ptx"]
        pairs = "bf16x2" if dtype == "bf16" else "f16x2"
        assert ptx.count(f"fma.rn.{pairs}") >= 12 and "cvt.rn.f32.s32" not in ptx, (dtype, capability, block_m)
# Turing (sm_75: T4, RTX 20xx): fp16's pairs assemble; bf16's do not (bf16x2 needs sm_80), which pairs_assemble says
from quantized_decode_kernels import pairs_assemble
for dtype in ("fp16", "bf16"):
    try:
        compile_kernel(bits=4, block_m=64, block_n=64, block_k=128, warps=4, bit_cast=False, columns=4096, dtype=dtype,
                       capability=75)
        assembled = True
    except Exception as error:
        assert "bf16x2" in str(error) and "sm_80" in str(error), error
        assembled = False
    assert assembled == pairs_assemble({"fp16": torch.float16, "bf16": torch.bfloat16}[dtype], (7, 5)), dtype
assert pairs_assemble(torch.bfloat16, (8, 0)) and pairs_assemble(torch.bfloat16, (9, 0))
print("compiled")
"""


def test_the_kernels_compile_for_the_h100_and_bit_casting_leaves_no_conversions(tmp_path):
    """Triton compiles the kernels for sm_90 without a GPU: every branch (int4/int8, one row/several, int8's two ways
    of turning codes into floats) compiles, and the bit-cast one holds no integer-to-float conversion instructions;
    int4's inline PTX (16-bit pairs: one row's products, several rows' tiles) assembles for bf16 and fp16 inputs on
    sm_80 to sm_90, and on sm_75 for fp16 only, as the routing (`pairs_assemble`) assumes."""
    pytest.importorskip("triton")
    assert "compiled" in run_child(COMPILE_FOR_H100, tmp_path, interpret=False)


def test_several_int4_rows_are_timed_among_their_buckets_gluon_tiles():
    """quantized_prompt_kernel.py's autotune candidates: each bucket of rows times only its own tiles (its rows a
    program), splits only into whole steps of the weight's inputs, takes mma.sync's tiles alone where there is no
    wgmma (and those cards only up to MMA_V2_BUCKETS), and the partial sums' room is the bucket's largest split (long
    prompts: none)."""
    import quantized_prompt_kernel as prompt

    configs = prompt.tile_configs()

    def fitting(rows: int, inputs: int, *, hopper: bool = True) -> list[tuple]:
        return [(config["BLOCK_ROWS"], *(config[field] for field in prompt.TILE_FIELDS)) for config in configs
                if prompt.tile_fits(config, rows_bucket=prompt.bucket(rows), inputs=inputs, hopper=hopper)]

    assert [prompt.bucket(rows) for rows in (2, 8, 9, 16, 17, 32, 33, 64, 65, 128, 129, 287)] == [
        8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256]
    for rows in (2, 8, 16, 17, 32, 33, 64, 65, 128, 129, 287):
        rows_bucket = prompt.bucket(rows)
        tiles = fitting(rows, 4096)
        assert sorted(tile[1:] for tile in tiles) == sorted(prompt.BUCKET_TILES[rows_bucket][1]), rows
        assert {tile[0] for tile in tiles} == {prompt.BUCKET_TILES[rows_bucket][0]} and tiles[0][0] >= min(rows, 128)
        assert prompt.most_splits(rows_bucket) == max(tile[-1] for tile in tiles)
        elsewhere = fitting(rows, 4096, hopper=False)
        assert all(tile[1] for tile in elsewhere)  # mma.sync's tiles only
        assert bool(elsewhere) == (rows_bucket in prompt.MMA_V2_BUCKETS), rows
    assert {tile[-1] for tile in fitting(8, 11008)} == {1, 2, 4}  # down: 172 steps of 64 inputs
    assert {tile[-1] for tile in fitting(8, 64 * 3)} == {1}  # three steps split into none of 2 or 4
    assert prompt.most_splits(prompt.bucket(200)) == 1


def test_the_gluon_prompt_kernel_compiles_with_the_weights_in_registers():
    """quantized_prompt_kernel.py compiled without a GPU, bf16 and fp16: for the H100 (sm_90) its wgmma tiles (a
    prompt's 128 rows, and 16 rows of batched decoding with split inputs) take the dequantized weights from registers
    (not shared memory), and its mma.sync tiles compile for sm_89, sm_86 and sm_90 (8 and 32 rows); nothing spills,
    and few enough registers that three 4-warp programs fit an SM (the overlap among programs it relies on)."""
    pytest.importorskip("triton")
    import quantized_prompt_kernel
    if quantized_prompt_kernel.gluon is None:
        pytest.skip("this Triton has no Gluon Hopper API")
    cases = [("bf16", 128, 1, 90, []), ("fp16", 128, 1, 90, []), ("bf16", 16, 4, 90, []),
             ("bf16", 8, 2, 89, ["--mma_v2"]), ("fp16", 32, 1, 86, ["--mma_v2"]), ("bf16", 8, 1, 90, ["--mma_v2"])]
    for dtype, rows, split, capability, instruction in cases:
        result = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "inspect_kernel.py"), "--prompt",
                                 "--dtype", dtype, "--block_m", str(rows), "--split_k", str(split), "--capability",
                                 str(capability), *instruction], capture_output=True, text=True, timeout=300,
                                check=True)
        assert "the tensor cores' weights from: registers" in result.stdout, result.stdout
        registers, stack = re.search(r"registers per thread: (\d+), stack: (\d+)", result.stdout).groups()
        assert int(stack) == 0 and int(registers) * 128 * 3 <= 65536, result.stdout
        assert "HFMA2 32" in result.stdout, result.stdout  # 32 weights a thread a step, two an instruction
        assert ("HMMA" if instruction else "HGMMA") in result.stdout, result.stdout


def emulated_dp4a_row(x: torch.Tensor, weight: PackedWeight) -> torch.Tensor:
    """What quantized_row_kernel.py's PTX computes for one row, byte for byte in int64 (the GPU runs it; Triton's
    interpreter runs no PTX): each chunk's inputs as 16-bit integers under the chunk's power of two (limbs_asm), their
    low and high bytes in the limb words' order (INT4_LIMB_WORDS), met by the code bytes one and-mask (and a shift)
    of each word gives (dot_asm), the chunk's sum scaled in float64."""
    from quantized_row_kernel import INPUT_FORMATS, INT4_LIMB_WORDS, INT8_LIMB_WORDS
    int4 = weight.offset is not None
    chunk = 16 if int4 else 8
    kind, mantissa, scale_base, power_base, least = INPUT_FORMATS[x.dtype]
    chunks = x.view(-1, chunk)
    magnitudes = chunks.view(torch.int16).long() & 0x7FFF
    exponent = (magnitudes.amax(-1, keepdim=True) >> mantissa).clamp(min=least)
    shift = (scale_base - exponent) - 127  # x * 2^shift: 16-bit integers
    values = torch.round(chunks.double() * torch.pow(2.0, shift.double())).long()
    order = [i for word in (INT4_LIMB_WORDS if int4 else INT8_LIMB_WORDS) for i in word]
    limb_bytes = torch.stack([values & 255, (values >> 8)], 1)[:, :, order]  # low byte unsigned, high signed
    if int4:
        words = weight.qweight.long() & 0xFFFFFFFF
        masked = torch.stack([words & 0x0F0F0F0F, (words >> 4) & 0x0F0F0F0F], -1).view(words.shape[0], -1, 4)
        code_bytes = torch.stack([(masked >> (8 * b)) & 255 for b in range(4)], -1).view(words.shape[0], -1, 16)
    else:
        code_bytes = weight.qweight.long().view(weight.qweight.shape[0], -1, 8)
    sums = torch.einsum("ncb,cb->nc", code_bytes, limb_bytes[:, 0]) + 256 * torch.einsum(
        "ncb,cb->nc", code_bytes, limb_bytes[:, 1])
    power = torch.pow(2.0, (exponent + power_base - 127).double()).view(-1)  # the float32 bits limbs_asm writes
    if not int4:
        return (sums.double() * power).sum(-1) * weight.scale.double().view(-1)
    repeat = x.numel() // weight.scale.shape[0] // 16
    scale, offset = (part.double().T.repeat_interleave(repeat, 1) for part in (weight.scale, weight.offset))
    return (scale * sums.double() * power + offset * chunks.double().sum(-1)).sum(-1)


@pytest.mark.parametrize("bits", [4, 8])
def test_the_dp4a_rows_arithmetic_is_the_weight_only_product(bits):
    """quantized_row_kernel.py's arithmetic emulated byte for byte (`emulated_dp4a_row`) against the float64 product
    over the unrounded weights (code x scale + offset, as weight_quantization.py stores them): bf16 and fp16 inputs,
    int4 groups of 64 and 128, outlier features and a chunk of zeros. 16-bit integers under each chunk's largest
    input keep bf16 inputs exactly, fp16's to 2^-15 of the chunk's largest: within 1e-4 of the exact product."""
    torch.manual_seed(bits)
    for group, dtype in ((64, torch.bfloat16), (128, torch.bfloat16), (64, torch.float16)):
        weight = packed_weight((0.05 * torch.randn(96, 512)).bfloat16(), bits, group_size=group)
        x = torch.randn(512)
        x[:4] *= 100
        x[32:48] = 0
        x = x.to(dtype)
        exact = unrounded_weight(weight) @ x.double()
        error = float((emulated_dp4a_row(x, weight) - exact).norm() / exact.norm())
        assert error < 1e-4, (bits, group, dtype, error)


def test_the_dp4a_row_kernels_compile_for_ampere_to_hopper():
    """quantized_row_kernel.py compiled without a GPU for sm_80, 86, 89 and 90 (its PTX: dp4a, 16-bit pair maxima,
    byte permutes), bf16 and fp16 inputs, int4 and int8, plain, SiLU-gated and with the residual add and norm: each
    assembles, runs its products on IDP (dp4a), loads the codes evict-first and keeps everything in registers."""
    pytest.importorskip("triton")
    import quantized_row_kernel
    if quantized_row_kernel.gluon is None:
        pytest.skip("this Triton has no Gluon")
    for bits, dtype, capability, variant in ((4, "bf16", 90, "gated"), (8, "fp16", 90, "plain"),
                                             (4, "fp16", 80, "norm"), (8, "bf16", 86, "gated"),
                                             (4, "bf16", 89, "plain"), (8, "bf16", 90, "norm")):
        result = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "inspect_kernel.py"), "--row",
                                 variant, "--bits", str(bits), "--dtype", dtype, "--capability", str(capability)],
                                capture_output=True, text=True, timeout=300, check=True)
        assert re.search(r"IDP \d+", result.stdout) and "stack: 0" in result.stdout, result.stdout
        assert "LDG.E.EF" in result.stdout.split("loads:")[-1], result.stdout


def test_inspect_kernel_reads_the_compiled_int4_loop_without_a_gpu():
    """benchmarks/inspect_kernel.py: the one-row int4 kernel compiled for the H100 offline, its registers, and a loop
    of products in 16-bit pairs (HFMA2) whose weights arrive in 16-byte loads (the aligned pointers a launch
    specialises; unaligned, every load would fetch one element) marked evict-first (EF), so that they do not push the
    input out of L1; a several-row tile's loop, its weights made in pairs and multiplied on the tensor cores."""
    pytest.importorskip("triton")
    result = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "inspect_kernel.py"), "--bits", "4",
                             "--block_n", "8", "--block_k", "512", "--warps", "4"],
                            capture_output=True, text=True, timeout=300, check=True)
    assert re.search(r"registers per thread: \d+", result.stdout), result.stdout
    loop = re.search(r"main loop: \d+ instructions for 32 weights a thread \((\d+\.\d+) per weight\)", result.stdout)
    assert loop and 1 < float(loop.group(1)) < 20 and "HFMA2" in result.stdout, result.stdout
    assert "LDG.E.EF.128" in result.stdout.split("loads:")[-1], result.stdout
    # several rows' int4 tiles: the weights made in 16-bit pairs, multiplied on the tensor cores (sm_90: HGMMA)
    result = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "inspect_kernel.py"), "--bits", "4",
                             "--block_m", "64", "--block_n", "64", "--block_k", "128", "--warps", "4",
                             "--weights_first"], capture_output=True, text=True, timeout=300, check=True)
    assert "weights first" in result.stdout and "HFMA2" in result.stdout, result.stdout
    assert "HGMMA" in result.stdout, result.stdout
