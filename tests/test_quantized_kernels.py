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


# One row takes the matrix-vector branch (int4: dequantizing each weight, or scaling each group's sum), several the
# tensor-core branch; 192 inputs end inside a block.
@pytest.mark.parametrize("bits,factored", [(8, False), (4, False), (4, True)])
@pytest.mark.parametrize("columns", [256, 192])
@pytest.mark.parametrize("rows", [1, 3, 20])
def test_kernels_equal_dequantize_then_matmul(interpreted, bits, factored, columns, rows):
    if factored and rows > 1:
        pytest.skip("several rows have one arithmetic")
    weights = packed_weights(interpreted, bits, columns, torch.bfloat16)
    # The interpreter computes bfloat16 tensor-core products wrongly (numpy has no bfloat16): several rows in float16.
    dtype = torch.bfloat16 if rows == 1 else torch.float16
    x = torch.randn(rows, columns).to(dtype)
    config = interpreted.kernel_config(rows, bits)
    if rows == 1:
        config = {**config, "BLOCK_K": 128, "FACTORED": factored}
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
