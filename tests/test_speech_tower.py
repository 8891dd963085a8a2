"""Google's speech encoder (speech_embedding.py) as NextGPT's audio tower, the offline one: clips prepared by the
processor, one token per audio through the model's own audio projector, saved and reloaded, frozen in training
(its batch norm included), live and cached features alike, and assembled with openwakeword's weights."""

import json

import numpy as np
import pytest
import soundfile
import torch

from conftest import (TINY_IMAGEBIND, random_image, stage1_losses_live_and_cached, stage2_weights_before_and_after,
                      tiny_text_config)
from configuration_nextgpt import ImageBindVisionConfig, NextGPTConfig, SpeechEmbeddingConfig
from modeling_nextgpt import NextGPTForConditionalGeneration
from processing_nextgpt import NextGPTProcessor, imagebind_image_processor
from speech_embedding import SpeechEmbeddingModel, speech_features


@pytest.fixture
def speech_processor(tokenizer) -> NextGPTProcessor:
    return NextGPTProcessor(imagebind_image_processor(), tokenizer, audio_token="<audio>", speech_clip_seconds=1.0)


def tiny_speech_model(processor: NextGPTProcessor) -> NextGPTForConditionalGeneration:
    config = NextGPTConfig(vision_config=ImageBindVisionConfig(**TINY_IMAGEBIND).to_dict(),
                           text_config=tiny_text_config(), audio_config=SpeechEmbeddingConfig(clip_seconds=1.0),
                           share_projector=False, image_token_id=processor.image_token_id,
                           audio_token_id=processor.audio_token_id)
    torch.manual_seed(0)
    return NextGPTForConditionalGeneration(config)


def tone(path, frequency: float, seconds: float) -> str:
    time = np.arange(int(seconds * 22050)) / 22050
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * frequency * time), 22050)
    return str(path)


def test_clips_are_centred_cut_or_padded_at_16_bit_scale():
    rising = torch.arange(32000.0)[None].expand(2, -1) / 32767  # two channels, 2 s
    clip = speech_features(rising, clip_seconds=1.0)
    assert clip.shape == (1, 16000) and clip[0, 0] == 8000 and clip[0, -1] == 23999  # the middle second
    short = speech_features(torch.full((1, 8000), 0.5), clip_seconds=1.0)
    assert short.shape == (1, 16000) and short[0, 3999] == 0 and short[0, 4000] == 0.5 * 32767 and short[0, 12000] == 0
    with pytest.raises(ValueError, match="clip_seconds 0.5 is shorter than the speech encoder's window"):
        speech_features(rising, clip_seconds=0.5)


def test_the_model_hears_audio_through_its_own_projector_and_reloads(speech_processor, tmp_path):
    model = tiny_speech_model(speech_processor).eval()
    assert isinstance(model.audio_tower, SpeechEmbeddingModel) and hasattr(model, "audio_projector")
    prompt = speech_processor.render([{"role": "user", "content": "<audio>\nWhich tone?"}], add_generation_prompt=True)
    logits = []
    for frequency in (330, 660):
        inputs = speech_processor(text=prompt, audio=[tone(tmp_path / f"{frequency}.wav", frequency, 1.5)],
                                  return_tensors="pt")
        assert inputs["input_features"].shape == (1, 1, 16000)
        with torch.no_grad():
            logits.append(model(**inputs).logits)
    assert not torch.allclose(logits[0], logits[1])  # the audio reaches the LLM
    assert model.get_audio_features(inputs["input_features"]).last_hidden_state.shape == (1, 1, 96)
    model.save_pretrained(tmp_path / "model")
    speech_processor.save_pretrained(tmp_path / "model")
    reloaded = NextGPTForConditionalGeneration.from_pretrained(tmp_path / "model").eval()
    processor = NextGPTProcessor.from_pretrained(tmp_path / "model")
    assert processor.speech_clip_seconds == 1.0
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**processor(text=prompt, audio=[str(tmp_path / "660.wav")],
                                                        return_tensors="pt")).logits, logits[1])
    reloaded.train()
    assert not reloaded.audio_tower.training and not reloaded.audio_tower.encoder.network.stem_norm.training


def test_training_leaves_the_speech_tower_and_its_batch_norm_as_they_were(speech_processor, tmp_path):
    start = tmp_path / "start"
    tiny_speech_model(speech_processor).save_pretrained(start)
    speech_processor.save_pretrained(start)
    tone(tmp_path / "high.wav", 660, 1.2)
    random_image().save(tmp_path / "picture.png")
    records = [{"id": "both", "image": "picture.png", "audio": "high.wav",
                "conversations": [{"from": "human", "value": "<image>\n<audio>\nHigh or low?"},
                                  {"from": "gpt", "value": "high"}]}] * 2
    before, after = stage2_weights_before_and_after(start=start, records=records, media_folder=tmp_path,
                                                    tmp_path=tmp_path, steps=2)
    assert not torch.equal(before["audio_projector.linear_1.weight"], after["audio_projector.linear_1.weight"])
    tower = [key for key in before if key.startswith("audio_tower.")]
    assert any("running_mean" in key for key in tower)
    assert all(torch.equal(before[key], after[key]) for key in tower)


def test_cached_speech_features_train_as_live_ones(speech_processor, tmp_path):
    start = tmp_path / "start"
    tiny_speech_model(speech_processor).save_pretrained(start)
    speech_processor.save_pretrained(start)
    captions = [{"id": str(frequency), "audio": tone(tmp_path / f"{frequency}.wav", frequency, 1.0),
                 "caption": f"a tone of {frequency} hertz"} for frequency in (220, 440, 880, 1760)]
    json.dump(captions, open(tmp_path / "captions.json", "w"))
    losses = stage1_losses_live_and_cached(start=start, data_path=tmp_path / "captions.json", media_folder=tmp_path,
                                           tmp_path=tmp_path)
    torch.testing.assert_close(torch.tensor(losses["cached"]), torch.tensor(losses["live"]), atol=1e-4, rtol=1e-4)


def test_the_audio_cache_follows_the_speech_clip_length(speech_processor, tokenizer):
    """Another clip length is other features: a cache of one is not read for the other (nor for ImageBind's audio
    preprocessing)."""
    from embedding_cache import tower_fingerprint

    model = tiny_speech_model(speech_processor)
    longer = NextGPTProcessor(imagebind_image_processor(), tokenizer, audio_token="<audio>", speech_clip_seconds=1.5)
    imagebind_audio = NextGPTProcessor(imagebind_image_processor(), tokenizer, audio_token="<audio>")
    fingerprints = {tower_fingerprint(model, processor, "float32", kind="audio")
                    for processor in (speech_processor, longer, imagebind_audio)}
    assert len(fingerprints) == 3


def test_assembly_takes_openwakeword_s_weights(tokenizer, tmp_path):
    pytest.importorskip("openwakeword")
    from transformers import AutoModelForCausalLM, LlamaConfig

    from assemble_nextgpt import assemble_from_models
    from imagebind_vision import ImageBindVisionModel
    from speech_embedding import SpeechEmbedding

    model, processor = assemble_from_models(
        AutoModelForCausalLM.from_config(LlamaConfig(**tiny_text_config())), tokenizer,
        ImageBindVisionModel(ImageBindVisionConfig(**TINY_IMAGEBIND)), imagebind_image_processor(),
        audio_model=SpeechEmbeddingModel.from_openwakeword())
    assert processor.speech_clip_seconds == 2.0 and model.config.audio_config.model_type == "speech_embedding"
    assert not model.config.share_projector  # 96-d speech against 24-d images
    reference = SpeechEmbedding.from_openwakeword()
    for name, tensor in reference.state_dict().items():
        assert torch.equal(model.audio_tower.encoder.state_dict()[name], tensor), name
