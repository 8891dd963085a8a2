"""Video through ImageBind's vision branch (issue 17, first part): decoding with PyAV, ImageBind's clips, frames and
crops, bad files named, and the model's video features (a still video is its image; clips averaged or laid out)."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_config, tiny_model
from configuration_nextgpt import EfficientNetLiteConfig

av = pytest.importorskip("av")
from video_features import (CLIPS_PER_VIDEO, MEAN, STD, load_video_frames, spatial_crops,  # noqa: E402
                            video_clips, video_features)


def write_video(path, frames: int = 60, fps: int = 10, height: int = 48, width: int = 64) -> str:
    """Frame i is a flat grey of level 4 i (lossless FFV1, so the levels come back up to colour conversion)."""
    with av.open(str(path), "w") as output:
        stream = output.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for index in range(frames):
            image = np.full((height, width, 3), 4 * index, np.uint8)
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
