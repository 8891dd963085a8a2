"""Video through ImageBind's vision branch (issue 17, first part): decoding with PyAV, ImageBind's clips, frames and
crops, bad files named, and the model's video features (a still video is its image; clips averaged or laid out)."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import stage1_losses_live_and_cached, tiny_config, tiny_model
from configuration_nextgpt import EfficientNetLiteConfig

av = pytest.importorskip("av")
from video_features import (CLIPS_PER_VIDEO, MEAN, STD, load_video_frames, spatial_crops,  # noqa: E402
                            video_clips, video_features)


def write_video(path, frames: int = 60, fps: int = 10, height: int = 48, width: int = 64) -> str:
    """Frame i is a flat grey of level 4 i mod 256 (lossless FFV1: the levels come back up to colour conversion)."""
    with av.open(str(path), "w") as output:
        stream = output.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for index in range(frames):
            image = np.full((height, width, 3), 4 * index % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return str(path)


def frame_numbers(frames: list[torch.Tensor]) -> list[int]:
    return [round(float(frame.float().mean()) / 4) for frame in frames]


def test_each_clip_gives_its_first_and_last_frame(tmp_path):
    """6 s at 10 frames/s: clips of 2 s start at 0, 0.8, 1.6, 2.4 and 3.2 s (ConstantClipsPerVideoSampler, 5 clips);
    a clip holds the frames at start <= t < start + 2 s."""
    frames = load_video_frames(write_video(tmp_path / "six.mkv"))
    assert frame_numbers(frames) == [0, 19, 8, 27, 16, 35, 24, 43, 32, 51]
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == torch.uint8


def test_a_video_shorter_than_a_clip_gives_every_clip_the_same_frames(tmp_path):
    frames = load_video_frames(write_video(tmp_path / "short.mkv", frames=10))
    assert frame_numbers(frames) == [0, 9] * CLIPS_PER_VIDEO


def test_clips_are_scaled_normalised_and_cropped_as_imagebind_does(tmp_path):
    features = video_features(write_video(tmp_path / "six.mkv"))
    assert features.shape == (15, 3, 2, 224, 224) and features.dtype == torch.float32
    # A flat frame stays flat through the bilinear scaling: each value is (level / 255 - mean) / std.
    level = float(load_video_frames(tmp_path / "six.mkv")[0].float().mean())
    expected = (level / 255 - torch.tensor(MEAN)) / torch.tensor(STD)
    torch.testing.assert_close(features[0, :, 0].mean(dim=(1, 2)), expected, atol=0.02, rtol=0)
    # The short side becomes 224 (48 x 64 -> 224 x 298), the crops take the start, the middle and the end of the long
    # side; a frame whose columns count up shows which.
    columns = torch.arange(298.0).expand(3, 2, 224, 298)
    starts = [int(crop[0, 0, 0, 0]) for crop in spatial_crops(columns)]
    assert starts == [0, 37, 74]
    wide = [torch.from_numpy(np.tile(np.arange(64, dtype=np.uint8)[None, :, None], (48, 1, 3)))] * 2
    assert video_clips(wide).shape == (3, 3, 2, 224, 224)


def test_bad_videos_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="missing.mp4 not found"):
        load_video_frames(str(tmp_path / "missing.mp4"))
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(ValueError, match="notes.mp4 cannot be read as video"):
        load_video_frames(str(tmp_path / "notes.mp4"))
    import soundfile

    soundfile.write(tmp_path / "tone.wav", np.sin(np.arange(16000) / 10).astype(np.float32), 16000)
    with pytest.raises(ValueError, match="tone.wav has no video stream"):
        load_video_frames(str(tmp_path / "tone.wav"))
    whole = write_video(tmp_path / "six.mkv")
    with pytest.raises(ValueError, match=r"six.mkv lasts 6 s, more than the 5 s allowed"):
        load_video_frames(whole, max_seconds=5)
    data = open(whole, "rb").read()
    (tmp_path / "cut.mkv").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.mkv is truncated: its frames end at \d\.\d s of the 6.0 s"):
        load_video_frames(str(tmp_path / "cut.mkv"))


@pytest.mark.parametrize("image_mode", ["embedding", "patches"])
def test_a_still_video_is_its_image_to_the_model(image_mode, make_processor):
    """ImageBind's stem sees an image as two equal frames: a video whose frames are one 224-px image gives that image's
    tokens, once (embedding mode: the clips' mean) or once per clip (patch mode)."""
    config = tiny_config(image_mode)
    model, processor = tiny_model(config), make_processor(config)
    image = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    clips = video_clips([torch.from_numpy(image)] * (2 * CLIPS_PER_VIDEO))
    with torch.no_grad():
        video = model.get_video_features(clips[None])
        still = model.get_image_features(pixel_values=processor.preprocess_images([Image.fromarray(image)]))
    tokens = still.pooler_output.shape[1]
    assert video.pooler_output.shape == (1, tokens * (1 if image_mode == "embedding" else 15), config.text_config
                                         .hidden_size)
    for clip in range(video.pooler_output.shape[1] // tokens):
        torch.testing.assert_close(video.pooler_output[:, clip * tokens:(clip + 1) * tokens], still.pooler_output,
                                   atol=1e-4, rtol=1e-4)


def test_videos_need_an_imagebind_tower():
    config = tiny_config("embedding", vision_config=EfficientNetLiteConfig().to_dict())
    with pytest.raises(ValueError, match="videos need ImageBind's vision branch"):
        tiny_model(config).get_video_features(torch.zeros(1, 15, 3, 2, 224, 224))


@pytest.fixture
def video_model(tokenizer):
    """A tiny model assembled from an ImageBind tower (which brings `<video>`) and a tiny LLM."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from assemble_nextgpt import assemble_from_models
    from conftest import TINY_IMAGEBIND, tiny_text_config
    from configuration_nextgpt import ImageBindVisionConfig
    from imagebind_vision import ImageBindVisionModel
    from processing_nextgpt import imagebind_image_processor

    def assemble(image_mode: str = "embedding"):
        torch.manual_seed(0)
        model, processor = assemble_from_models(
            AutoModelForCausalLM.from_config(LlamaConfig(**tiny_text_config())), tokenizer,
            ImageBindVisionModel(ImageBindVisionConfig(**TINY_IMAGEBIND)), imagebind_image_processor(),
            image_mode=image_mode)
        return model.eval(), processor

    return assemble


def test_images_and_videos_merge_in_reading_order(video_model, tmp_path):
    model, processor = video_model()
    assert processor.video_token == "<video>" and model.config.video_token_id == processor.video_token_id
    first = write_video(tmp_path / "first.mkv")
    second = write_video(tmp_path / "second.mkv", frames=30, height=64, width=48)
    question = "<image>\n<video>\nWhat changed from <video> to the image?"
    prompt = processor.render([{"role": "user", "content": question}], add_generation_prompt=True)
    inputs = processor(text=prompt, images=[Image.new("RGB", (64, 64), "red")], videos=[first, second],
                       return_tensors="pt")
    assert inputs["pixel_values_videos"].shape == (2, 15, 3, 2, 224, 224)
    torch.testing.assert_close(inputs["pixel_values_videos"][1], video_features(second))
    ids = inputs["input_ids"][0]
    with torch.no_grad():
        embeds = model.embed_inputs(ids[None], pixel_values=inputs["pixel_values"],
                                    pixel_values_videos=inputs["pixel_values_videos"])
        videos = model.get_video_features(inputs["pixel_values_videos"]).pooler_output
        output = model(**inputs)
        generated = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    places = (ids == processor.video_token_id).nonzero()[:, 0]
    assert len(places) == 2
    torch.testing.assert_close(embeds[0, places], videos[:, 0])  # the first video first
    assert output.video_outputs.last_hidden_state.shape == (2, 1, model.config.vision_feature_dim)
    assert generated.shape == (1, ids.shape[0] + 3)


def test_patch_mode_gives_every_clip_its_image_tokens(video_model, tmp_path):
    model, processor = video_model("patches")
    assert processor.num_video_tokens == model.config.num_video_tokens == 15 * model.config.num_image_tokens
    inputs = processor(text="<video>\nWhat happens?", videos=write_video(tmp_path / "six.mkv"), return_tensors="pt")
    assert int((inputs["input_ids"] == processor.video_token_id).sum()) == 15 * 257
    with torch.no_grad():
        assert model(**inputs).logits.shape[1] == inputs["input_ids"].shape[1]


def test_video_placeholders_and_videos_must_agree(video_model, tokenizer, tmp_path):
    model, processor = video_model()
    video = write_video(tmp_path / "six.mkv", frames=20)
    with pytest.raises(ValueError, match=r"1 <video> placeholders \(per prompt: \[1\]\) but 0 videos"):
        processor(text="<video>\nWhat happens?")
    with pytest.raises(ValueError, match=r"0 <video> placeholders \(per prompt: \[0\]\) but 1 videos"):
        processor(text="What happens?", videos=[video])
    with pytest.raises(ValueError, match="The text has 1 video placeholder tokens but no videos were given"):
        model(**processor(text="<video>\nWhat happens?", videos=[video], return_tensors="pt").data
              | {"pixel_values_videos": None})
    plain = tiny_model(tiny_config("embedding"))
    with pytest.raises(ValueError, match="this model takes no video"):
        plain(input_ids=torch.tensor([[1, 2]]), pixel_values_videos=torch.zeros(1, 15, 3, 2, 224, 224))
    with pytest.raises(ValueError, match="video needs ImageBind's vision branch"):
        tiny_config("embedding", vision_config=EfficientNetLiteConfig().to_dict(), video_token_id=7)


def test_chat_template_video_parts_and_the_pipeline(video_model, tmp_path):
    from transformers import pipeline

    model, processor = video_model()
    video = write_video(tmp_path / "six.mkv", frames=20)
    conversation = [{"role": "user", "content": [{"type": "video", "video": video},
                                                 {"type": "text", "text": "What happens?"}]}]
    inputs = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")
    assert inputs["pixel_values_videos"].shape == (1, 15, 3, 2, 224, 224)
    assert "<video>\nWhat happens?" in processor.apply_chat_template(conversation, add_generation_prompt=True)
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    vqa = pipeline("visual-question-answering", model=str(tmp_path / "model"), trust_remote_code=True)
    assert vqa.preprocess({"question": "What happens?", "video": video})["pixel_values_videos"].shape[0] == 1
    assert isinstance(vqa(video=video, question="What happens?", max_new_tokens=2)[0]["answer"], str)


def test_inference_answers_about_videos_and_names_what_is_wrong(video_model, tmp_path, capsys):
    from inference import main

    model, processor = video_model()
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    video = write_video(tmp_path / "six.mkv", frames=20)
    Image.new("RGB", (64, 64), "blue").save(tmp_path / "still.png")
    common = ["--model", str(tmp_path / "model"), "--max-new-tokens", "3"]
    assert main([*common, "--video", video, "What happens?"]) == 0
    assert main([*common, "--image", str(tmp_path / "still.png"), "--video", video, "--video", video, "Same?"]) == 0
    capsys.readouterr()
    assert main([*common, "--video", str(tmp_path / "missing.mp4"), "What happens?"]) == 2
    assert "missing.mp4 not found" in capsys.readouterr().err
    plain, plain_processor = tmp_path / "plain", processor.__class__(processor.image_processor, processor.tokenizer)
    tiny_model(tiny_config("embedding")).save_pretrained(plain)  # image_token_id 49152, as the tokenizer gives it
    plain_processor.save_pretrained(plain)
    assert main(["--model", str(plain), "--video", video, "What happens?"]) == 2
    assert "this model takes no video" in capsys.readouterr().err


def video_records(folder) -> list[dict]:
    write_video(folder / "six.mkv")
    write_video(folder / "two.mkv", frames=20, height=64, width=48)
    Image.new("RGB", (64, 64), "red").save(folder / "still.png")
    return [
        {"id": "both", "image": "still.png", "video": ["six.mkv", "two.mkv"],
         "conversations": [{"from": "human", "value": "<image>\nIs <video> longer than <video>?"},
                           {"from": "gpt", "value": "yes"}]},
        {"id": "alone", "video": "two.mkv",
         "conversations": [{"from": "human", "value": "<video>\nHow long?"}, {"from": "gpt", "value": "two seconds"}]},
    ]


def test_video_records_become_pixel_values_videos_in_reading_order(video_model, tmp_path):
    from training_data import NextGPTCollator, prepare_examples

    _, processor = video_model()
    examples, bad = prepare_examples(video_records(tmp_path), "data.json", processor, image_folder=str(tmp_path))
    assert not bad and [len(example["videos"]) for example in examples] == [2, 1]
    expected = processor.preprocess_videos([str(tmp_path / name) for name in ("six.mkv", "two.mkv", "two.mkv")])
    for pack in (True, False):
        batch = NextGPTCollator(processor, pack=pack)(examples)
        torch.testing.assert_close(batch["pixel_values_videos"], expected)
        assert int((batch["input_ids"] == processor.video_token_id).sum()) == 3
        assert batch["pixel_values"].shape[0] == 1


def test_every_bad_video_record_is_named_with_its_reason(video_model, tokenizer, tmp_path):
    from processing_nextgpt import NextGPTProcessor, imagebind_image_processor
    from training_data import BadRecordsError, prepare_examples

    _, processor = video_model()
    alone = video_records(tmp_path)[1]
    (tmp_path / "notes.mp4").write_text("not a video")
    data = open(tmp_path / "six.mkv", "rb").read()
    (tmp_path / "cut.mkv").write_bytes(data[:len(data) // 2])
    bad_records = [{**alone, "id": "missing", "video": "missing.mp4"}, {**alone, "id": "text", "video": "notes.mp4"},
                   {**alone, "id": "cut", "video": "cut.mkv"}, {**alone, "id": "count", "video": ["two.mkv"] * 2},
                   {**alone, "id": "number", "video": 3}]
    with pytest.raises(BadRecordsError) as raised:
        prepare_examples(bad_records, "data.json", processor, image_folder=str(tmp_path))
    reasons = {bad.record_id: bad.reason for bad in raised.value.bad_records}
    assert "missing.mp4 not found" in reasons["missing"]
    assert "notes.mp4 cannot be read as video" in reasons["text"]
    assert "cut.mkv is truncated" in reasons["cut"]
    assert "1 <video> placeholders but 2 videos" in reasons["count"]
    assert "'video' must be a path" in reasons["number"]
    with pytest.raises(BadRecordsError, match="the model takes no video"):
        prepare_examples([alone], "data.json", NextGPTProcessor(imagebind_image_processor(), tokenizer),
                         image_folder=str(tmp_path))


def test_stage1_aligns_the_projector_on_video_captions(video_model, tmp_path):
    """Video caption records (`{"id", "video", "caption"}`) train the projector the videos go through; the tower
    stays frozen."""
    import json

    from safetensors.torch import load_file

    from train_hf import train
    from training_data import prepare_examples

    model, processor = video_model()
    model.save_pretrained(tmp_path / "start")
    processor.save_pretrained(tmp_path / "start")
    video_records(tmp_path)
    captions = [{"id": "a", "video": "six.mkv", "caption": "grey turning white"},
                {"id": "b", "video": "two.mkv", "caption": "a short grey clip"}]
    examples, _ = prepare_examples(captions, "captions.jsonl", processor, image_folder=str(tmp_path))
    assert "<video>\nProvide a caption for this video:" in processor.tokenizer.decode(examples[0]["input_ids"])
    with open(tmp_path / "captions.jsonl", "w") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in captions)
    train(["--stage", "1", "--model_name_or_path", str(tmp_path / "start"), "--data_path",
           str(tmp_path / "captions.jsonl"), "--image_folder", str(tmp_path), "--output_dir", str(tmp_path / "out"),
           "--max_steps", "1", "--learning_rate", "1e-2", "--report_to", "none", "--per_device_train_batch_size", "2",
           "--dataloader_num_workers", "0", "--disable_tqdm", "true"])
    before, after = load_file(tmp_path / "start" / "model.safetensors"), load_file(
        tmp_path / "out" / "final" / "model.safetensors")
    assert not torch.equal(before["projector.linear_1.weight"], after["projector.linear_1.weight"])
    assert all(torch.equal(before[key], after[key]) for key in before if not key.startswith("projector."))


def video_part(url: str) -> dict:
    return {"type": "video_url", "video_url": {"url": url}}


def data_url(path) -> str:
    import base64

    return "data:video/x-matroska;base64," + base64.b64encode(open(path, "rb").read()).decode()


@pytest.mark.parametrize("fast", [False, True], ids=["window-batched", "continuous"])
def test_the_server_answers_about_video_url_parts_as_generate_does(video_model, tmp_path, fast):
    """`video_url` parts (data: URLs, or files under --image-root): decoded, placed after the images and before the
    text as in training, merged; the answer equals `generate` on the same inputs. Bad videos are a 400 naming the
    part."""
    import json

    from serve import Limits
    from test_serve import request, start, stop

    model, processor = video_model()
    model.generation_config.eos_token_id = None
    video = write_video(tmp_path / "six.mkv")
    server = start(model, processor, image_root=str(tmp_path), fast=fast,
                   limits=Limits(max_videos=2, max_video_seconds=7))
    try:
        inputs = processor(text=processor.render([{"role": "user", "content": "<video>\nWhat happens?"}],
                                                 add_generation_prompt=True), videos=[video], return_tensors="pt")
        with torch.no_grad():
            expected = model.generate(**inputs, max_new_tokens=4, do_sample=False)[0, inputs["input_ids"].shape[1]:]
        expected = processor.tokenizer.decode(expected, skip_special_tokens=True).strip()
        for url in (data_url(video), "six.mkv"):
            content = [{"type": "text", "text": "What happens?"}, video_part(url)]
            status, text = request(server, {"messages": [{"role": "user", "content": content}], "max_tokens": 4})
            assert status == 200, text
            assert json.loads(text)["choices"][0]["message"]["content"] == expected

        write_video(tmp_path / "long.mkv", frames=90)
        (tmp_path / "notes.txt").write_text("not a video")
        bad = {"not base64": (video_part("data:video/mp4;base64,%%%"), "not valid base64"),
               "not video": (video_part(data_url(tmp_path / "notes.txt")), "cannot be read as video"),
               "too long": (video_part("long.mkv"), "more than the 7 s"),
               "outside": (video_part("../elsewhere.mp4"), "lies outside --image-root"),
               "no url": ({"type": "video_url", "video_url": {}}, "video_url needs a 'url'")}
        for name, (part, message) in bad.items():
            status, text = request(server, {"messages": [{"role": "user", "content": [part]}]})
            error = json.loads(text)["error"]
            assert status == 400 and error["param"] == "messages[0].content[0].video_url", (name, text)
            assert message in error["message"], (name, error)
        status, text = request(server, {"messages": [{"role": "user", "content": [video_part("six.mkv")] * 3}]})
        assert status == 400 and "3 videos in one request" in text
    finally:
        stop(server)


def test_a_server_without_video_refuses_video_url_parts_by_name(make_processor, tmp_path):
    from test_serve import request, start_with, stop

    server = start_with(make_processor)
    try:
        part = video_part(data_url(write_video(tmp_path / "six.mkv", frames=20)))
        status, text = request(server, {"messages": [{"role": "user", "content": [part]}]})
        assert status == 400 and "unsupported message part 'video': this model takes text and images" in text
    finally:
        stop(server)


@pytest.mark.parametrize("image_mode", ["embedding", "patches"])
def test_cached_video_features_are_the_live_ones(video_model, tmp_path, image_mode):
    from embedding_cache import EmbeddingCache

    model, processor = video_model(image_mode)
    videos = [write_video(tmp_path / "six.mkv"), write_video(tmp_path / "two.mkv", frames=20, height=64, width=48)]
    cache = EmbeddingCache.build(model, processor, {"video": videos}, str(tmp_path / "cache"), dtype="float32")
    assert cache.holds("video") and not cache.holds("image")
    pixels = processor.preprocess_videos(videos)
    with torch.no_grad():
        live = model.get_video_features(pixels).last_hidden_state
    cached = cache.lookup(videos[::-1], "video")
    torch.testing.assert_close(cached, live.flip(0))
    again = EmbeddingCache.build(model, processor, {"video": videos}, str(tmp_path / "cache"), dtype="float32")
    assert len(again.tables["video"]) == 1  # reused, not encoded again
    inputs = processor(text="<video>\nWhat happens?", videos=videos[:1], return_tensors="pt")
    with torch.no_grad():
        from_pixels = model(**inputs).logits
        from_cache = model(input_ids=inputs["input_ids"], video_embeds=cache.lookup(videos[:1], "video")).logits
    torch.testing.assert_close(from_cache, from_pixels)


def test_stage1_on_video_captions_trains_the_same_from_the_cache(video_model, tmp_path):
    import json

    model, processor = video_model()
    model.save_pretrained(tmp_path / "start")
    processor.save_pretrained(tmp_path / "start")
    video_records(tmp_path)
    with open(tmp_path / "captions.jsonl", "w") as handle:
        for index, name in enumerate(["six.mkv", "two.mkv"] * 2):
            handle.write(json.dumps({"id": str(index), "video": name, "caption": f"clip {index}"}) + "\n")
    losses = stage1_losses_live_and_cached(start=tmp_path / "start", data_path=tmp_path / "captions.jsonl",
                                           media_folder=tmp_path, tmp_path=tmp_path)
    assert len(list((tmp_path / "cache").glob("video_embeds-*/*.arrow"))) == 1
    torch.testing.assert_close(torch.tensor(losses["cached"]), torch.tensor(losses["live"]), rtol=1e-5, atol=1e-5)


def test_a_long_video_is_decoded_only_around_its_clips_with_the_same_frames(tmp_path, monkeypatch):
    """Past SEEK_FROM_SECONDS the decoder seeks to the key frame before each clip (MPEG-4 with a key frame every 12
    frames here) instead of decoding everything: the same frames come out, and a cut-off file is still named."""
    import video_features as module

    path = tmp_path / "long.mp4"
    with av.open(str(path), "w") as output:  # 40 s at 4 frames/s; frame i has red level i
        stream = output.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt, stream.gop_size = 64, 48, "yuv420p", 12
        for index in range(160):
            image = np.zeros((48, 64, 3), np.uint8)
            image[..., 0] = index
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    assert module.SEEK_FROM_SECONDS < 40
    seeking = load_video_frames(str(path))
    monkeypatch.setattr(module, "SEEK_FROM_SECONDS", float("inf"))
    whole = load_video_frames(str(path))
    assert all(torch.equal(a, b) for a, b in zip(seeking, whole)) and len(seeking) == len(whole) == 10
    # Clips start at 0, 7.6, 15.2, 22.8 and 30.4 s: frames 0-7, 31-38, 61-68, 92-99, 122-129 (lossy: +-3 levels).
    levels = torch.tensor([float(frame[..., 0].float().mean()) for frame in seeking])
    assert bool(((levels - torch.tensor([0, 7, 31, 38, 61, 68, 92, 99, 122, 129.0])).abs() <= 3).all()), levels
    monkeypatch.setattr(module, "SEEK_FROM_SECONDS", 30.0)
    data = path.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:len(data) * 2 // 3])
    with pytest.raises(ValueError, match="cut.mp4"):
        load_video_frames(str(tmp_path / "cut.mp4"))


def test_videos_are_evaluated_and_blanked_for_the_baseline(video_model, tmp_path):
    """eval_vqa takes video records as training does; `--blank_media` answers with a black video instead."""
    import json

    from eval_vqa import main as eval_main

    model, processor = video_model()
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    video_records(tmp_path)
    records = [{"id": "a", "video": "six.mkv", "question_type": "what", "conversations": [
        {"from": "human", "value": "<video>\nWhat happens?"}, {"from": "gpt", "value": "it brightens"}]},
        {"id": "b", "image": "still.png", "video": "two.mkv", "question_type": "same", "conversations": [
            {"from": "human", "value": "<image>\n<video>\nSame colour?"}, {"from": "gpt", "value": "no"}]}]
    json.dump(records, open(tmp_path / "test.json", "w"))
    common = ["--model", str(tmp_path / "model"), "--data", str(tmp_path / "test.json"), "--image_folder",
              str(tmp_path), "--max_new_tokens", "2", "--batch_size", "2"]
    for extra in ([], ["--blank_media"], ["--blank_images"]):
        output = tmp_path / f"answers{len(extra)}{extra[0][-5:] if extra else ''}.jsonl"
        assert eval_main([*common, *extra, "--output", str(output)]) == 0
        scores = json.load(open(str(output).replace(".jsonl", "_scores.json")))
        assert scores["count/what"] == 1 and scores["count/same"] == 1
    from eval_vqa import blank_media

    assert blank_media()["videos"].shape == (15, 3, 2, 224, 224)
