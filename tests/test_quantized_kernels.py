"""The quantized decode kernels (quantized_decode_kernels.py, issue 15) against dequantize-then-matmul, run by Triton's
interpreter on the CPU (the same kernel source the GPU compiles; test_cuda.py checks them compiled), and the fast
path decoding quantized weights."""

import os

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from conftest import tiny_text_config
from fast_decoder import LlamaFamilyDecoder, unsupported_reason
from weight_quantization import QuantizedLinear, quantize_int4, quantize_int8, quantize_language_model


@pytest.fixture(scope="module")
def interpreted():
    """The kernels module, its kernels run by Triton's interpreter (conftest.py turns it on where there is no GPU)."""
    pytest.importorskip("triton")
    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("a GPU is present: test_cuda.py checks the compiled kernels")
    import quantized_decode_kernels

    return quantized_decode_kernels


def packed_weights(module, bits: int, columns: int, dtype: torch.dtype) -> list:
    """Three weights of different sizes, as q|k|v of a grouped-query layer would be."""
    torch.manual_seed(bits + columns)
    weights = []
    for rows in (64, 128, 192):
        stored = (quantize_int4 if bits == 4 else quantize_int8)((0.05 * torch.randn(rows, columns)).to(dtype))
        weights.append(module.PackedWeight(stored["qweight"], stored["scale"], stored.get("offset")))
    return weights


# One row takes the matrix-vector branch, several the tensor-core branch; 192 inputs end inside a block; codes become
# floats by conversion or by bit tricks.
@pytest.mark.parametrize("bit_cast", [False, True], ids=["convert", "bit-cast"])
@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("columns", [256, 192])
@pytest.mark.parametrize("rows", [1, 3, 20])
def test_kernels_equal_dequantize_then_matmul(interpreted, bits, bit_cast, columns, rows):
    weights = packed_weights(interpreted, bits, columns, torch.bfloat16)
    # The interpreter computes bfloat16 tensor-core products wrongly (numpy has no bfloat16): several rows in float16.
    dtype = torch.bfloat16 if rows == 1 else torch.float16
    x = torch.randn(rows, columns).to(dtype)
    config = {**interpreted.kernel_config(rows, bits), "BIT_CAST": bit_cast, **({"BLOCK_K": 128} if rows == 1 else {})}
    ours = interpreted.launch_quantized_kernel(x, weights, config).float()
    reference = interpreted.reference_product(x.float(), [weight._replace(
        scale=weight.scale.float(), offset=None if weight.offset is None else weight.offset.float())
        for weight in weights])
    assert ours.shape == (rows, 384)
    # Only the output's rounding (and float32 summation order) may differ: half a step of the output dtype.
    step = torch.finfo(dtype).eps * reference.abs().clamp(min=1)
    assert bool(((ours - reference).abs() <= step).all()), float((ours - reference).abs().max())


def test_untileable_weights_and_cpu_inputs_take_the_reference(interpreted):
    weights = packed_weights(interpreted, 4, 256, torch.bfloat16)
    assert interpreted.kernel_tiles(weights)
    x = torch.randn(2, 256, dtype=torch.bfloat16)
    assert torch.equal(interpreted.quantized_product(x, weights), interpreted.reference_product(x, weights))  # CPU
    rows_40 = weights[0]._replace(qweight=weights[0].qweight[:40], scale=weights[0].scale[:, :40],
                                  offset=weights[0].offset[:, :40])
    assert not interpreted.kernel_tiles([rows_40])  # not whole blocks of rows
    assert not interpreted.kernel_tiles([weights[0], packed_weights(interpreted, 8, 256, torch.bfloat16)[0]])


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
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from quantized_decode_kernels import _quantized_kernel as kernel

for int4 in (True, False):
    for block_m, block_n in ((1, 4), (16, 64 if int4 else 32)):
        for bit_cast in (False, True):
            types = {"x_ptr": "*bf16", "out_ptr": "*bf16", "n0": "i32", "n01": "i32", "M": "i32", "N": "i32"}
            types.update({name: ("*u8" if int4 else "*i8") for name in ("q0", "q1", "q2")})
            types.update({name: "*bf16" for name in ("s0", "s1", "s2", "f0", "f1", "f2")})
            constants = {"K": 4096, "GROUP": 64 if int4 else 4096, "INT4": int4, "BLOCK_M": block_m,
                         "BLOCK_N": block_n, "BLOCK_K": 512 if block_m == 1 else 128, "BIT_CAST": bit_cast}
            source = ASTSource(fn=kernel, signature={name: types.get(name, "constexpr") for name in kernel.arg_names},
                               constexprs={(kernel.arg_names.index(name),): value for name, value in constants.items()})
            ptx = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4}).asm["ptx"]
            conversions = sum(ptx.count(f"cvt.rn.f32.{kind}") for kind in ("u8", "u16", "u32", "s8", "s16", "s32"))
            print(int4, block_m, bit_cast, conversions)
            assert not (bit_cast and conversions), "the bit-cast kernels convert no integers to floats"
print("compiled")
"""


def test_the_kernels_compile_for_the_h100_and_bit_casting_leaves_no_conversions(tmp_path):
    """Triton compiles the kernels for sm_90 without a GPU: every branch (int4/int8, one row/several, both ways of
    turning codes into floats) compiles, and the bit-cast ones hold no integer-to-float conversion instructions. In a
    process without the interpreter (conftest.py turns it on here)."""
    import subprocess
    import sys

    pytest.importorskip("triton")
    from conftest import REPO_ROOT

    environment = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    environment.update(PYTHONPATH=str(REPO_ROOT), TRITON_CACHE_DIR=str(tmp_path / "triton"))
    result = subprocess.run([sys.executable, "-c", COMPILE_FOR_H100], capture_output=True, text=True, timeout=600,
                            env=environment)
    assert result.returncode == 0 and "compiled" in result.stdout, (result.stdout[-2000:], result.stderr[-3000:])
