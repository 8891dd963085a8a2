"""Audio in training (issue 17): records with `"audio"` paths, checked like images, batched as `input_features` in
reading order, trained through `train_hf.py`; a model assembled with ImageBind's audio branch."""

import base64
import json
import shutil

import numpy as np
import pytest
import soundfile
import torch

from conftest import (TINY_IMAGEBIND, random_image, stage1_losses_live_and_cached, stage2_weights_before_and_after,
                      tiny_text_config)
from configuration_nextgpt import ImageBindAudioConfig, ImageBindVisionConfig, NextGPTConfig
from modeling_nextgpt import NextGPTForConditionalGeneration
from processing_nextgpt import NextGPTProcessor, imagebind_image_processor
from serve import Limits
from training_data import BadRecordsError, NextGPTCollator, prepare_examples

TINY_AUDIO = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, projection_dim=24)


def write_tone(path, frequency: float, seconds: float = 2.5, rate: int = 22050) -> None:
    time = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * frequency * time), rate)


@pytest.fixture
def audio_processor(tokenizer) -> NextGPTProcessor:
    return NextGPTProcessor(imagebind_image_processor(), tokenizer, audio_token="<audio>")


@pytest.fixture
def records(tmp_path) -> list[dict]:
    """Two records beside their files in tmp_path: an image with two audio files, and one audio file alone."""
    random_image().save(tmp_path / "picture.png")
    write_tone(tmp_path / "low.wav", 330)
    write_tone(tmp_path / "high.wav", 660)
    return [
        {"id": "both", "image": "picture.png", "audio": ["low.wav", "high.wav"],
         "conversations": [{"from": "human", "value": "<image>\nIs <audio> lower than <audio>?"},
                           {"from": "gpt", "value": "yes"}]},
        {"id": "alone", "audio": "high.wav",
         "conversations": [{"from": "human", "value": "<audio>\nHigh or low?"}, {"from": "gpt", "value": "high"}]},
    ]


def test_audio_records_become_input_features_in_reading_order(records, audio_processor, tmp_path):
    examples, bad = prepare_examples(records, "data.json", audio_processor, image_folder=str(tmp_path))
    assert not bad and [len(example["audio"]) for example in examples] == [2, 1]
    expected = audio_processor.preprocess_audio([str(tmp_path / name) for name in ("low.wav", "high.wav", "high.wav")])
    for pack in (True, False):
        batch = NextGPTCollator(audio_processor, pack=pack)(examples)
        torch.testing.assert_close(batch["input_features"], expected)
        assert int((batch["input_ids"] == audio_processor.audio_token_id).sum()) == 3
        assert batch["pixel_values"].shape[0] == 1


def test_every_bad_audio_record_is_named_with_its_reason(records, audio_processor, tokenizer, tmp_path):
    (tmp_path / "notes.txt").write_text("not audio")
    soundfile.write(tmp_path / "silent.wav", np.zeros(16000), 16000)
    alone = records[1]
    bad_records = [{**alone, "id": "missing", "audio": "missing.wav"}, {**alone, "id": "text", "audio": "notes.txt"},
                   {**alone, "id": "silent", "audio": "silent.wav"},
                   {**alone, "id": "count", "audio": ["high.wav", "low.wav"]}, {**alone, "id": "number", "audio": 3}]
    with pytest.raises(BadRecordsError) as raised:
        prepare_examples(bad_records, "data.json", audio_processor, image_folder=str(tmp_path))
    reasons = {bad.record_id: bad.reason for bad in raised.value.bad_records}
    assert "missing.wav not found" in reasons["missing"]
    assert "notes.txt cannot be read as audio" in reasons["text"]
    assert "silent.wav is silent" in reasons["silent"]
    assert "1 <audio> placeholders but 2 audio files" in reasons["count"]
    assert "'audio' must be a path" in reasons["number"]
    without_audio = NextGPTProcessor(imagebind_image_processor(), tokenizer)
    with pytest.raises(BadRecordsError, match="the model has no audio branch"):
        prepare_examples([alone], "data.json", without_audio, image_folder=str(tmp_path))


def test_each_file_is_checked_once_however_many_records_name_it(records, audio_processor, tmp_path, monkeypatch):
    """Several questions about one image or one clip are the rule (LLaVA's data); decoding a long video or audio file
    takes seconds, so each path is decoded once per run, and every record naming a bad file still gets its error."""
    import training_data

    decoded = []
    load_audio = training_data.MEDIA["audio"][1]
    check_image_file = training_data.check_image_file

    def counting(check):
        return lambda path: (decoded.append(path), check(path))[1]

    monkeypatch.setitem(training_data.MEDIA, "audio", (training_data.MEDIA["audio"][0], counting(load_audio),
                                                       training_data.MEDIA["audio"][2]))
    monkeypatch.setattr(training_data, "check_image_file", counting(check_image_file))
    examples, _ = prepare_examples(records * 3, "data.json", audio_processor, image_folder=str(tmp_path))
    assert len(examples) == 6
    assert sorted(decoded) == sorted(str(tmp_path / name) for name in ("picture.png", "low.wav", "high.wav"))
    twice = [{**records[1], "id": f"gone {index}", "audio": "gone.wav"} for index in range(2)]
    with pytest.raises(BadRecordsError) as raised:
        prepare_examples(twice, "data.json", audio_processor, image_folder=str(tmp_path))
    assert [(bad.record_id, "gone.wav not found" in bad.reason) for bad in raised.value.bad_records] == [
        ("gone 0", True), ("gone 1", True)]


def save_tiny_audio_model(folder, processor: NextGPTProcessor) -> None:
    """A tiny random NextGPT with an audio branch (projector shared), saved with `processor`."""
    config = NextGPTConfig(vision_config=ImageBindVisionConfig(**TINY_IMAGEBIND).to_dict(),
                           text_config=tiny_text_config(), audio_config=ImageBindAudioConfig(**TINY_AUDIO).to_dict(),
                           image_token_id=processor.image_token_id, audio_token_id=processor.audio_token_id)
    torch.manual_seed(0)
    NextGPTForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)


def test_stage2_learns_from_audio_alone_through_the_shared_projector(records, audio_processor, tmp_path):
    """A record with audio and no image still trains the projector: the audio's gradient reaches it."""
    start = tmp_path / "start"
    save_tiny_audio_model(start, audio_processor)
    before, after = stage2_weights_before_and_after(start=start, records=[records[1]] * 2, media_folder=tmp_path,
                                                    tmp_path=tmp_path)
    assert not torch.equal(before["projector.linear_1.weight"], after["projector.linear_1.weight"])
    assert all(torch.equal(before[key], after[key]) for key in before if key.startswith("audio_tower."))


def test_assembly_adds_imagebinds_audio_branch(tmp_path, tokenizer):
    """`assemble_from_models(..., audio_model=...)`: `<audio>` in the processor, the config's audio ids, and the
    projector shared where widths match (embedding mode), an own audio projector where they do not (patches)."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from assemble_nextgpt import assemble_from_models
    from imagebind_audio import ImageBindAudioModel
    from imagebind_vision import ImageBindVisionModel

    for image_mode, shared in (("embedding", True), ("patches", False)):
        model, processor = assemble_from_models(
            AutoModelForCausalLM.from_config(LlamaConfig(**tiny_text_config())), tokenizer,
            ImageBindVisionModel(ImageBindVisionConfig(**TINY_IMAGEBIND)), imagebind_image_processor(),
            image_mode=image_mode, audio_model=ImageBindAudioModel(ImageBindAudioConfig(**TINY_AUDIO)),
        )
        assert processor.audio_token == "<audio>" and model.config.audio_token_id == processor.audio_token_id
        assert model.config.share_projector == shared and hasattr(model, "audio_projector") != shared
        model.save_pretrained(tmp_path / image_mode)
        reloaded = NextGPTForConditionalGeneration.from_pretrained(tmp_path / image_mode)
        assert reloaded.config.audio_config.projection_dim == TINY_AUDIO["projection_dim"]


def test_inference_answers_about_audio_and_names_what_is_wrong(records, audio_processor, tmp_path, capsys):
    from inference import main

    save_tiny_audio_model(tmp_path / "model", audio_processor)
    common = ["--model", str(tmp_path / "model"), "--max-new-tokens", "3"]
    assert main([*common, "--image", str(tmp_path / "picture.png"), "--audio", str(tmp_path / "low.wav"),
                 "--audio", str(tmp_path / "high.wav"), "Is the first lower?"]) == 0
    assert main([*common, "--audio", str(tmp_path / "high.wav"), "High or low?"]) == 0
    capsys.readouterr()
    assert main([*common, "--audio", str(tmp_path / "missing.wav"), "High or low?"]) == 2
    assert "missing.wav not found" in capsys.readouterr().err
    plain = tmp_path / "plain"
    NextGPTForConditionalGeneration(NextGPTConfig(
        vision_config=ImageBindVisionConfig(**TINY_IMAGEBIND).to_dict(), text_config=tiny_text_config(),
        image_token_id=audio_processor.image_token_id)).save_pretrained(plain)
    NextGPTProcessor(imagebind_image_processor(), audio_processor.tokenizer).save_pretrained(plain)
    assert main(["--model", str(plain), "--audio", str(tmp_path / "high.wav"), "High or low?"]) == 2
    assert "this model takes no audio" in capsys.readouterr().err


def test_the_pipeline_takes_audio_with_or_without_an_image(records, audio_processor, tmp_path):
    from transformers import pipeline

    save_tiny_audio_model(tmp_path / "model", audio_processor)
    vqa = pipeline("visual-question-answering", model=str(tmp_path / "model"), trust_remote_code=True)
    from audio_features import load_audio

    for media, audio_count in (({"audio": str(tmp_path / "high.wav")}, 1),
                               ({"audio": load_audio(str(tmp_path / "high.wav"))}, 1),  # one waveform is one audio
                               ({"image": str(tmp_path / "picture.png"), "audio": [str(tmp_path / "low.wav")] * 2}, 2)):
        model_inputs = vqa.preprocess({"question": "High or low?", **media})
        assert model_inputs["input_features"].shape == (audio_count, 3, 1, 128, 204)
        assert int((model_inputs["input_ids"] == audio_processor.audio_token_id).sum()) == audio_count
        assert ("pixel_values" in model_inputs) == ("image" in media)
        assert isinstance(vqa(question="High or low?", max_new_tokens=2, **media)[0]["answer"], str)
    with pytest.raises(ValueError, match="audio .*missing.wav not found"):
        vqa(audio=str(tmp_path / "missing.wav"), question="High or low?")
    with pytest.raises(ValueError, match=r"image= \(or audio=, video=\) and question="):
        vqa(question="High or low?")


def audio_part(path) -> dict:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(open(path, "rb").read()).decode(),
                                                   "format": "wav"}}


@pytest.mark.parametrize("fast", [False, True], ids=["window-batched", "continuous"])
def test_the_server_answers_about_input_audio_as_generate_does(records, audio_processor, tmp_path, fast):
    """OpenAI's `input_audio` parts: decoded, placed after the images and before the text as in training, and merged;
    the answer equals `generate` on the same inputs. Bad audio is a 400 naming the part."""
    from test_serve import request, start, stop

    save_tiny_audio_model(tmp_path / "model", audio_processor)
    model = NextGPTForConditionalGeneration.from_pretrained(tmp_path / "model").eval()
    model.generation_config.eos_token_id = None
    server = start(model, audio_processor, fast=fast, limits=Limits(max_audio=2, max_audio_seconds=5))
    try:
        content = [{"type": "text", "text": "High or low?"}, audio_part(tmp_path / "high.wav")]
        status, text = request(server, {"messages": [{"role": "user", "content": content}], "max_tokens": 4})
        assert status == 200, text
        inputs = audio_processor(text=audio_processor.render([{"role": "user", "content": "<audio>\nHigh or low?"}],
                                                             add_generation_prompt=True),
                                 audio=[str(tmp_path / "high.wav")], return_tensors="pt")
        with torch.no_grad():
            expected = model.generate(**inputs, max_new_tokens=4, do_sample=False)[0, inputs["input_ids"].shape[1]:]
        assert json.loads(text)["choices"][0]["message"]["content"] == audio_processor.tokenizer.decode(
            expected, skip_special_tokens=True).strip()

        write_tone(tmp_path / "long.wav", 440, seconds=6)
        (tmp_path / "notes.txt").write_text("not audio")
        bad = {"not base64": {"type": "input_audio", "input_audio": {"data": "%%%", "format": "wav"}},
               "not audio": audio_part(tmp_path / "notes.txt"), "too long": audio_part(tmp_path / "long.wav"),
               "no data": {"type": "input_audio", "input_audio": {"format": "wav"}}}
        messages = {"not base64": "not valid base64", "not audio": "cannot be read as audio",
                    "too long": "more than the 5 s", "no data": "input_audio needs"}
        for name, part in bad.items():
            status, text = request(server, {"messages": [{"role": "user", "content": [part]}]})
            error = json.loads(text)["error"]
            assert status == 400 and error["param"] == "messages[0].content[0].input_audio", (name, text)
            assert messages[name] in error["message"], (name, error)
        too_many = [audio_part(tmp_path / "low.wav")] * 3
        status, text = request(server, {"messages": [{"role": "user", "content": too_many}]})
        assert status == 400 and "3 audio parts in one request" in text
    finally:
        stop(server)


def test_a_server_without_audio_refuses_input_audio_by_name(records, make_processor, tmp_path):
    from test_serve import request, start_with, stop

    server = start_with(make_processor)
    try:
        status, text = request(server, {"messages": [{"role": "user", "content": [audio_part(tmp_path / "low.wav")]}]})
        assert status == 400 and "unsupported message part 'audio': this model takes text and images" in text
    finally:
        stop(server)


def test_audio_caption_records_are_asked_for_a_caption_of_the_audio(records, audio_processor, tmp_path):
    examples, _ = prepare_examples([{"id": "rain", "audio": "low.wav", "caption": "a low hum"}], "captions.jsonl",
                                   audio_processor, image_folder=str(tmp_path))
    text = audio_processor.tokenizer.decode(examples[0]["input_ids"])
    assert "<audio>\nProvide a caption for this audio:" in text and examples[0]["audio"] == [str(tmp_path / "low.wav")]
    learnt = [token for token in examples[0]["labels"] if token != -100]
    assert audio_processor.tokenizer.decode(learnt).startswith("a low hum")
    with pytest.raises(BadRecordsError, match="a caption record needs an 'image' \\(or an 'audio', a 'video'\\)"):
        prepare_examples([{"id": "none", "caption": "nothing"}], "captions.jsonl", audio_processor)


def test_cached_audio_features_are_the_live_ones_and_train_the_same(records, audio_processor, tmp_path):
    """`--cache_image_embeds` encodes each audio file once too: the cached joint embeddings are the live ones, and a
    stage-1 run on audio captions gives the same losses from the cache as live."""
    from embedding_cache import EmbeddingCache

    save_tiny_audio_model(tmp_path / "start", audio_processor)
    model = NextGPTForConditionalGeneration.from_pretrained(tmp_path / "start").eval()
    files = [str(tmp_path / name) for name in ("low.wav", "high.wav")]
    cache = EmbeddingCache.build(model, audio_processor, {"audio": files}, str(tmp_path / "cache"), dtype="float32")
    with torch.no_grad():
        live = model.get_audio_features(audio_processor.preprocess_audio(files)).last_hidden_state
    torch.testing.assert_close(cache.lookup(files, "audio"), live)
    with open(tmp_path / "captions.jsonl", "w") as handle:
        for index, name in enumerate(["low.wav", "high.wav"] * 2):
            handle.write(json.dumps({"id": str(index), "audio": name, "caption": f"tone {index}"}) + "\n")
    losses = stage1_losses_live_and_cached(start=tmp_path / "start", data_path=tmp_path / "captions.jsonl",
                                           media_folder=tmp_path, tmp_path=tmp_path)
    torch.testing.assert_close(torch.tensor(losses["cached"]), torch.tensor(losses["live"]), rtol=1e-5, atol=1e-5)


def test_audio_records_are_evaluated_and_silenced_for_the_baseline(records, audio_processor, tmp_path):
    from eval_vqa import evaluate_vqa

    save_tiny_audio_model(tmp_path / "model", audio_processor)
    model = NextGPTForConditionalGeneration.from_pretrained(tmp_path / "model").eval()
    for blank in (False, True):
        results, answers = evaluate_vqa(model, audio_processor, records, str(tmp_path), batch_size=2,
                                        max_new_tokens=2, blank=blank)
        assert len(answers) == 2 and set(results) >= {"accuracy", "count/all"}


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian's espeak-ng (.ci/run installs it)")
def test_spoken_shapes_records_train_as_they_are_and_test_voices_are_never_trained_on(audio_processor, tmp_path):
    """speak_shapes.py, the audio demo's data: every record passes training's checks (its WAV decodes, placeholders
    match), the four kinds of question take turns, yes and no are as common, the test split's voices are not the
    training split's, and the same seed writes the same records and sounds."""
    from speak_shapes import QUESTIONS, TEST_VOICES, TRAIN_VOICES, make_split, stage1_captions

    train = make_split(output_dir=str(tmp_path / "a"), split="train", num_questions=16, voices=TRAIN_VOICES, seed=0)
    test = make_split(output_dir=str(tmp_path / "a"), split="test", num_questions=8, voices=TEST_VOICES, seed=1)
    examples, _ = prepare_examples(train + test, "spoken.json", audio_processor, image_folder=str(tmp_path / "a"))
    assert len(examples) == 24
    assert [record["question_type"] for record in train[:4]] == list(QUESTIONS)
    answers = [record["conversations"][1]["value"] for record in train
               if record["question_type"] == "spoken vs picture"]
    assert sorted(answers) == ["no", "no", "yes", "yes"]
    for record in train + test:
        answer = record["conversations"][1]["value"]
        if record["question_type"] == "picture colour":  # a picture, nothing heard
            assert answer == record["picture"]["colour"] and "audio" not in record
            assert record["conversations"][0]["value"].startswith("<image>\n")
        elif record["question_type"] != "spoken vs picture":
            assert answer == record["speech"]["word"]
    voices = {split: {r["speech"]["voice"] for r in records if "speech" in r} for split, records in
              (("train", train), ("test", test))}
    assert voices["test"] and voices["test"].isdisjoint(voices["train"])
    captions = stage1_captions(train)  # every clip with its word, every picture with its colour and shape
    assert len(captions) == 12 + 8 and captions[0]["caption"] == f'a voice saying "{train[0]["speech"]["word"]}"'
    assert captions[3]["caption"] == f'a {train[2]["picture"]["colour"]} {train[2]["picture"]["shape"]}'
    assert captions[4]["caption"] == f'a {train[3]["picture"]["colour"]} {train[3]["picture"]["shape"]}'
    captioned, _ = prepare_examples(captions, "captions.json", audio_processor, image_folder=str(tmp_path / "a"))
    assert len(captioned) == 20
    again = make_split(output_dir=str(tmp_path / "b"), split="train", num_questions=16, voices=TRAIN_VOICES, seed=0)
    assert again == train
    assert (tmp_path / "a" / train[0]["audio"]).read_bytes() == (tmp_path / "b" / train[0]["audio"]).read_bytes()
