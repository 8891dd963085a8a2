"""Weight-only int8 / int4 quantization of the LLM's projections (issue 15): the stored layout, the error bound, the
layer swap, the tools' --quantize, and the shipped model still answering with 4-bit weights."""

import os

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from conftest import REPO_ROOT, tiny_text_config
from weight_quantization import (QUANTIZED_PROJECTIONS, QuantizedLinear, dequantize, quantize_int4, quantize_int8,
                                 quantize_language_model)


def test_int8_rows_round_to_within_half_a_step():
    weight = torch.randn(48, 96) * torch.linspace(0.1, 3, 48)[:, None]
    stored = quantize_int8(weight)
    assert stored["qweight"].dtype == torch.int8 and stored["scale"].shape == (1, 48)
    assert int(stored["qweight"].abs().max()) == 127  # each row's largest weight uses the whole range
    error = (dequantize(bits=8, group_size=96, **stored) - weight).abs()
    assert bool((error <= stored["scale"].T / 2 + 1e-6).all())


def test_int4_codes_pack_eight_per_word_evens_low_odds_high():
    """Word j holds inputs 8j..8j+7: bits 4n..4n+3 input 8j + 2n, bits 16 + 4n..19 + 4n input 8j + 2n + 1, so one
    shift and one mask give the codes of two neighbouring inputs in the word's two 16-bit halves."""
    codes = torch.randint(0, 16, (4, 128))
    codes[:, 0], codes[:, 1] = 0, 15  # every group of 64 spans 0..15, so the codes come back exactly
    codes[:, 64], codes[:, 65] = 0, 15
    codes[:, 3 * 8 + 7] = 15  # input 8j + 7 sits in bits 28..31: its 15 sets word j's sign bit
    weight = codes.float() * 0.5 - 3.0
    stored = quantize_int4(weight, group_size=64)
    assert stored["qweight"].shape == (4, 16) and stored["qweight"].dtype == torch.int32
    words = stored["qweight"].long() & 0xFFFFFFFF
    for word, n in ((0, 0), (0, 3), (3, 1), (8, 0), (15, 2)):
        pair = (words[:, word] >> (4 * n)) & 0x000F000F
        assert torch.equal(pair & 0xF, codes[:, 8 * word + 2 * n]), (word, n)
        assert torch.equal(pair >> 16, codes[:, 8 * word + 2 * n + 1]), (word, n)
    assert bool((stored["qweight"][:, 3] < 0).all())
    torch.testing.assert_close(stored["scale"], torch.full((2, 4), 0.5))
    torch.testing.assert_close(stored["offset"], torch.full((2, 4), -3.0))
    torch.testing.assert_close(dequantize(bits=4, group_size=64, **stored), weight)
    with pytest.raises(ValueError, match="whole words of 8 codes, got groups of 12"):
        quantize_int4(weight, group_size=12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int4_groups_round_to_within_half_a_step(dtype):
    weight = (torch.randn(32, 192) * torch.linspace(0.01, 2, 192)).to(dtype)
    stored = quantize_int4(weight, group_size=64)
    assert stored["scale"].dtype == dtype and stored["scale"].shape == (3, 32)
    error = (dequantize(bits=4, group_size=64, **stored).float() - weight.float()).abs().view(32, 3, 64)
    rounding = weight.float().abs().view(32, 3, 64) * torch.finfo(dtype).eps  # the result is rounded to `dtype` too
    assert bool((error <= stored["scale"].float().T.unsqueeze(-1) * 0.5001 + rounding + 1e-6).all())
    with pytest.raises(ValueError, match="int4 groups of 128 do not tile rows of 192 inputs"):
        quantize_int4(weight, group_size=128)


@pytest.mark.parametrize("bits", [8, 4])
def test_a_quantized_layer_computes_with_its_dequantized_weight(bits):
    linear = torch.nn.Linear(128, 64, bias=False)
    layer = QuantizedLinear(linear.weight.detach(), bits)
    inputs = torch.randn(3, 5, 128)
    with torch.no_grad():
        torch.testing.assert_close(layer(inputs), inputs @ layer.dequantized_weight().T)
        relative = (layer(inputs) - linear(inputs)).norm() / linear(inputs).norm()
    assert float(relative) < (0.01 if bits == 8 else 0.1)


def test_every_projection_of_the_decoder_layers_is_swapped_and_nothing_else():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**tiny_text_config()))
    head, embeddings = model.lm_head.weight.clone(), model.model.embed_tokens.weight.clone()
    inputs = torch.randint(0, 1000, (1, 12))
    with torch.no_grad():
        reference = model(inputs).logits
        quantize_language_model(model, bits=8)
        quantized = model(inputs).logits
    swapped = [name for name, module in model.named_modules() if isinstance(module, QuantizedLinear)]
    assert len(swapped) == len(QUANTIZED_PROJECTIONS) * model.config.num_hidden_layers
    assert torch.equal(model.lm_head.weight, head) and torch.equal(model.model.embed_tokens.weight, embeddings)
    assert float((quantized - reference).abs().max()) < 0.05 * float(reference.abs().max())


def test_int4_that_cannot_tile_a_width_changes_nothing():
    model = LlamaForCausalLM(LlamaConfig(**{**tiny_text_config(), "hidden_size": 96, "intermediate_size": 160}))
    with pytest.raises(ValueError, match=r"groups of 64 do not tile these projections' inputs \(\[32, 96, 160\]\)"):
        quantize_language_model(model, bits=4)
    assert not any(isinstance(module, QuantizedLinear) for module in model.modules())


def test_the_shipped_model_still_answers_with_4_bit_weights(default_folder, capsys):
    from inference import main

    image = os.path.join(REPO_ROOT, "examples", "red_triangle.png")
    assert main(["--model", default_folder, "--quantize", "int4", "--image", image, "What shape is in the image?"]) == 0
    assert capsys.readouterr().out.strip() == "triangle"
