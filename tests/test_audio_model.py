"""Audio in the model (issue 17): ImageBind's audio branch beside the image tower, one token per audio clip set (the
mean of its clips' joint embeddings, as NExT-GPT), through the image projector (shared, NExT-GPT) or its own."""

import pytest
import torch

from conftest import TINY_IMAGEBIND, tiny_text_config
from configuration_nextgpt import ImageBindAudioConfig, ImageBindVisionConfig, NextGPTConfig
from modeling_nextgpt import NextGPTForConditionalGeneration

IMAGE, AUDIO = 49152, 49153
TINY_AUDIO = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, projection_dim=24)


def audio_config(**kwargs) -> NextGPTConfig:
    return NextGPTConfig(vision_config=ImageBindVisionConfig(**TINY_IMAGEBIND).to_dict(),
                         text_config=tiny_text_config(), audio_config=ImageBindAudioConfig(**TINY_AUDIO).to_dict(),
                         image_token_id=IMAGE, audio_token_id=AUDIO, **kwargs)


def audio_model(**kwargs) -> NextGPTForConditionalGeneration:
    torch.manual_seed(0)
    return NextGPTForConditionalGeneration(audio_config(**kwargs)).eval()


def inputs(num_audio: int = 2):
    """One row: an image, text, then `num_audio` audio placeholders between words; 3 clips per audio."""
    ids = [IMAGE, 5, 6] + [token for _ in range(num_audio) for token in (AUDIO, 7)]
    return {"input_ids": torch.tensor([ids]), "pixel_values": torch.randn(1, 3, 224, 224),
            "input_features": torch.randn(num_audio, 3, 1, 128, 204)}


def test_each_audio_becomes_the_projected_mean_of_its_clips():
    model = audio_model()
    batch = inputs()
    with torch.no_grad():
        embeds = model.embed_inputs(batch["input_ids"], batch["pixel_values"],
                                    input_features=batch["input_features"])
        clips = model.audio_tower(batch["input_features"].flatten(0, 1)).pooler_output.view(2, 3, -1)
        expected = model.projector(clips.mean(dim=1))
        output = model(**batch)
    positions = (batch["input_ids"][0] == AUDIO).nonzero().flatten()
    torch.testing.assert_close(embeds[0, positions], expected)
    assert output.audio_outputs.pooler_output.shape == (2, 1, 32) and output.image_outputs is not None
    assert output.logits.shape == (1, batch["input_ids"].shape[1], 49152)


def test_audio_placeholders_and_clips_must_agree():
    model = audio_model()
    batch = inputs()
    with pytest.raises(ValueError, match="2 audio placeholder tokens but no audios were given"):
        model(input_ids=batch["input_ids"], pixel_values=batch["pixel_values"])
    with pytest.raises(ValueError, match=r"2 audio placeholder tokens \(2 audios of 1 tokens\) but 3 audios"):
        model(**{**batch, "input_features": torch.randn(3, 3, 1, 128, 204)})
    torch.manual_seed(0)
    image_only = NextGPTForConditionalGeneration(NextGPTConfig(
        vision_config=ImageBindVisionConfig(**TINY_IMAGEBIND).to_dict(), text_config=tiny_text_config(),
        image_token_id=IMAGE))
    with pytest.raises(ValueError, match="no audio branch"):
        image_only(input_ids=torch.tensor([[IMAGE, 5]]), pixel_values=batch["pixel_values"],
                   input_features=batch["input_features"])


def test_an_own_audio_projector_where_widths_differ_and_it_trains_with_the_image_projector():
    with pytest.raises(ValueError, match="share_projector needs audio features as wide as image features"):
        audio_config(image_mode="patches")
    model = audio_model(image_mode="patches", share_projector=False)
    assert model.audio_projector.linear_1.in_features == TINY_AUDIO["projection_dim"]
    model.set_trainable(projector=True)
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"projector", "audio_projector"}


def test_saved_audio_model_reloads_and_generates_with_audio(tmp_path):
    model = audio_model()
    batch = inputs(num_audio=1)
    model.save_pretrained(tmp_path)
    reloaded = NextGPTForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert reloaded.config.audio_token_id == AUDIO
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits)
        generated = reloaded.generate(**batch, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert generated.shape == (1, batch["input_ids"].shape[1] + 3)


def test_the_processor_turns_audio_files_into_the_models_input_features(tmp_path, tokenizer):
    """`processor(text=..., audio=[paths])` -> input_features the model merges at `<audio>`; counts are checked; a
    processor without an audio token refuses audio."""
    import soundfile

    from processing_nextgpt import NextGPTProcessor, imagebind_image_processor

    processor = NextGPTProcessor(imagebind_image_processor(), tokenizer, audio_token="<audio>")
    config = audio_config()
    config.image_token_id, config.audio_token_id = processor.image_token_id, processor.audio_token_id
    torch.manual_seed(0)
    model = NextGPTForConditionalGeneration(config).eval()
    paths = []
    for index, frequency in enumerate((330, 660)):
        time = torch.arange(int(2.5 * 22050)) / 22050
        paths.append(str(tmp_path / f"tone{index}.wav"))
        soundfile.write(paths[-1], (0.3 * torch.sin(2 * torch.pi * frequency * time)).numpy(), 22050)
    batch = processor(text="What do <audio> and <audio> say?", audio=paths, return_tensors="pt")
    assert batch["input_features"].shape == (2, 3, 1, 128, 204)
    assert int((batch["input_ids"] == processor.audio_token_id).sum()) == 2
    with torch.no_grad():
        assert model(**batch).audio_outputs.pooler_output.shape == (2, 1, 32)
    with pytest.raises(ValueError, match=r"1 <audio> placeholders \(per prompt: \[1\]\) but 2 audio clips"):
        processor(text="What does <audio> say?", audio=paths)
    with pytest.raises(ValueError, match="audio .*missing.wav not found"):
        processor(text="<audio>", audio=[str(tmp_path / "missing.wav")])
    with pytest.raises(ValueError, match="this processor takes no audio"):
        NextGPTProcessor(imagebind_image_processor(), tokenizer)(text="hi", audio=paths)


def test_the_fast_path_takes_audio_and_matches_generate():
    """`fast_generate` merges audio like `generate` (the audio branch runs in the prefill): same greedy tokens."""
    model = audio_model()
    batch = inputs(num_audio=2)
    options = dict(max_new_tokens=4, min_new_tokens=4, do_sample=False)
    with torch.no_grad():
        plain = model.generate(**batch, **options)
    fast = model.fast_generate(**batch, max_new_tokens=4, eos_token_id=[])
    assert torch.equal(fast, plain)
