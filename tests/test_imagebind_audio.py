"""The ImageBind audio branch against Meta's own implementation (the `imagebind-unofficial` package holds Meta's code,
built small by the vision branch's test helper)."""

import pytest
import torch

from configuration_nextgpt import ImageBindAudioConfig
from imagebind_audio import IMAGEBIND_AUDIO_KEY_MAP, ImageBindAudioModel
from imagebind_vision import convert_imagebind_state_dict
from test_imagebind_vision import TINY, ours_beside_meta, tiny_meta_imagebind


def test_matches_meta_imagebind_audio_in_fp32(tmp_path):
    """Trunk tokens and the scaled joint embedding of 2-second spectrograms, to 1e-5, from Meta's checkpoint keys."""
    output, expected_tokens, expected_embedding = ours_beside_meta(
        tmp_path, ImageBindAudioModel, torch.randn(3, 1, 128, 204))

    assert output.last_hidden_state.shape == (3, 229, TINY["hidden_size"])
    torch.testing.assert_close(output.last_hidden_state, expected_tokens, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(output.pooler_output, expected_embedding, atol=1e-5, rtol=1e-5)
    assert output.pooler_output.norm(dim=-1).allclose(torch.full((3,), 20.0))  # Meta's fixed logit scale


def test_eager_attention_gives_the_same_tokens_and_its_weights():
    model = ImageBindAudioModel(ImageBindAudioConfig(**TINY)).eval()
    spectrograms = torch.randn(2, 1, 128, 204)
    with torch.no_grad():
        sdpa = model(spectrograms).last_hidden_state
        model.set_attn_implementation("eager")
        eager = model(spectrograms, output_attentions=True)
    torch.testing.assert_close(eager.last_hidden_state, sdpa, atol=1e-5, rtol=1e-5)
    # 229 queries over 229 keys plus the learned one
    assert [tuple(w.shape) for w in eager.attentions] == [(2, TINY["num_attention_heads"], 229, 230)] * 2


def test_conversion_takes_every_audio_weight_and_nothing_else():
    meta = tiny_meta_imagebind("audio", TINY)
    converted = convert_imagebind_state_dict(meta.state_dict(), IMAGEBIND_AUDIO_KEY_MAP, "audio")
    assert set(converted) == set(ImageBindAudioModel(ImageBindAudioConfig(**TINY)).state_dict())
    audio_parameters = [key for key in meta.state_dict() if ".audio." in key and "logit_scale" not in key]
    assert len(converted) == len(audio_parameters)


def test_huge_defaults_give_imagebind_huge_shapes():
    with torch.device("meta"):
        model = ImageBindAudioModel(ImageBindAudioConfig())
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(86e6, rel=0.03)
    assert model.pos_embed.shape == (1, 229, 768)


def test_a_spectrogram_of_the_wrong_shape_is_refused_with_the_expected_one():
    model = ImageBindAudioModel(ImageBindAudioConfig(**TINY))
    with pytest.raises(ValueError, match=r"\(batch, 1, 128, 204\) spectrograms, got \(1, 1, 128, 100\)"):
        model(torch.randn(1, 1, 128, 100))
