"""ImageBind's video preprocessing: a video file -> five 2-second clips -> two frames each -> three 224-px crops each,
the (15, 3, 2, 224, 224) frame pairs that ImageBind's vision branch takes (its stem's 2-frame kernel sees a still
image as a pair of equal frames). Files are decoded by PyAV (FFmpeg, bundled in its wheels; the `video` extra).

As ImageBind's `load_and_transform_video_data` (pytorchvideo under it): clip starts by ConstantClipsPerVideoSampler
(`audio_features.clip_starts`, 5 clips), the first and the last frame of each clip (UniformTemporalSubsample(2)),
values / 255, the short side scaled to 224 (bilinear), CLIP's mean and standard deviation, then three 224 x 224 crops
along the long side (start, centre, end: SpatialCrop(224, num_crops=3)). Only the frames that the clips use are kept
while the file is decoded, so a long video costs its decoding time, not its size in memory.
"""

import math
import os
from fractions import Fraction

import torch
import torch.nn.functional as F

try:
    from .audio_features import CLIP_SECONDS, clip_starts
except ImportError:
    from audio_features import CLIP_SECONDS, clip_starts

CLIPS_PER_VIDEO = 5
FRAMES_PER_CLIP = 2
SIZE = 224
CROPS = 3
VIDEO_CLIPS = CLIPS_PER_VIDEO * CROPS  # the tower's inputs for one video: 5 clips x 3 crops, each a frame pair
MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's, as ImageBind normalises video
STD = (0.26862954, 0.26130258, 0.27577711)
MAX_SECONDS = 3600.0  # longer videos are refused before decoding
TRUNCATION_SLACK_SECONDS = 1.0  # frames ending this much (or a tenth of the length) before the headers' end: truncated
SEEK_FROM_SECONDS = 30.0  # longer videos are decoded only around their clips


def load_video_frames(path: str, max_seconds: float = MAX_SECONDS) -> list[torch.Tensor]:
    """The frames ImageBind looks at, as (CLIPS_PER_VIDEO * FRAMES_PER_CLIP) uint8 (H, W, 3) tensors in clip order:
    each clip's first and last frame, those shown at times start <= t < start + 2 s (a clip holding a single frame
    gives it twice; a clip holding none, in a video shorter than its clips, the frame nearest its start). A video
    longer than SEEK_FROM_SECONDS is decoded only around its clips (from the key frame before each), a shorter one
    whole. Refuses, naming the file: a missing file, what FFmpeg cannot open or decode, a file without a video stream
    or without frames, a video longer than `max_seconds` (from its headers, before decoding), and one whose frames
    stop well before the end its headers give (cut off)."""
    import av

    if not os.path.isfile(path):
        raise ValueError(f"video {path} not found")
    try:
        container = av.open(path)
    except av.FFmpegError as error:
        raise ValueError(f"video {path} cannot be read as video: {error}") from None
    with container:
        if not container.streams.video:
            raise ValueError(f"video {path} has no video stream")
        stream = container.streams.video[0]
        duration = stream_seconds(stream, container)
        if duration is not None and duration > max_seconds:
            raise ValueError(f"video {path} lasts {duration:.0f} s, more than the {max_seconds:g} s allowed")
        try:
            if duration is None:  # no header gives it: the last packet's time, without decoding
                times = [packet.pts * stream.time_base for packet in container.demux(stream) if packet.pts is not None]
                duration = float(max(times, default=0))
                container.seek(0)
            clips = ClipFrames(clip_starts(duration, CLIPS_PER_VIDEO))
            if duration > SEEK_FROM_SECONDS:
                for clip, start in enumerate(clips.starts):
                    clips.decode(container, stream, only=clip, seek_to=start)
                last_seconds = clips.decode(container, stream, only=None, seek_to=Fraction(duration) - CLIP_SECONDS)
            else:
                last_seconds = clips.decode(container, stream)
        except av.FFmpegError as error:
            raise ValueError(f"video {path} cannot be decoded: {error}") from None
    if last_seconds is None:
        raise ValueError(f"video {path} holds no frames")
    if last_seconds < duration - max(TRUNCATION_SLACK_SECONDS, duration / 10):
        raise ValueError(f"video {path} is truncated: its frames end at {float(last_seconds):.1f} s of the "
                         f"{duration:.1f} s its headers give")
    return clips.picked()


class ClipFrames:
    """Each clip's first, last and nearest-to-its-start frame among the frames decoded so far."""

    def __init__(self, starts: list[Fraction]):
        self.starts = starts
        self.first, self.last, self.nearest = [None] * len(starts), [None] * len(starts), [None] * len(starts)

    def decode(self, container, stream, *, only: int | None = None, seek_to: Fraction | None = None) -> Fraction | None:
        """Decodes from the start (or from the key frame before `seek_to`) to the end (or to the end of clip `only`),
        noting the frames of every clip (or of `only`); returns the last decoded frame's time."""
        if seek_to is not None:
            container.seek(max(int(seek_to / Fraction(stream.time_base)), 0), stream=stream, backward=True)
        clips = range(len(self.starts)) if only is None else [only]
        seconds = None
        for index, frame in enumerate(container.decode(stream)):
            # Exact times (pts x time base, both rational), so that a frame on a clip's boundary falls in or out
            # as it does for pytorchvideo.
            seconds = (frame.pts * Fraction(stream.time_base) if frame.pts is not None
                       else index / Fraction(stream.average_rate or 25))
            for clip in clips:
                start = self.starts[clip]
                if start <= seconds < start + CLIP_SECONDS:
                    self.first[clip] = frame if self.first[clip] is None else self.first[clip]
                    self.last[clip] = frame
                if self.nearest[clip] is None or abs(seconds - start) < self.nearest[clip][0]:
                    self.nearest[clip] = (abs(seconds - start), frame)
            if only is not None and seconds >= self.starts[only] + CLIP_SECONDS:
                break
        return seconds

    def picked(self) -> list[torch.Tensor]:
        frames = []
        for clip in range(len(self.starts)):
            pair = (self.first[clip], self.last[clip]) if self.first[clip] is not None else (self.nearest[clip][1],) * 2
            frames += [torch.from_numpy(frame.to_ndarray(format="rgb24")) for frame in pair]
        return frames


def stream_seconds(stream, container) -> float | None:
    """The video's length from its headers (stream, else container), or None where neither gives it."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # FFmpeg's AV_TIME_BASE
    return None


def video_clips(frames: list[torch.Tensor]) -> torch.Tensor:
    """(CLIPS_PER_VIDEO * CROPS, 3, FRAMES_PER_CLIP, SIZE, SIZE) float32 from `load_video_frames`' frames."""
    clips = []
    for first in range(0, len(frames), FRAMES_PER_CLIP):
        clip = torch.stack(frames[first:first + FRAMES_PER_CLIP]).permute(3, 0, 1, 2).float() / 255  # (3, T, H, W)
        height, width = clip.shape[-2:]
        if width < height:
            size = (int(math.floor(height / width * SIZE)), SIZE)
        else:
            size = (SIZE, int(math.floor(width / height * SIZE)))
        clip = F.interpolate(clip, size=size, mode="bilinear", align_corners=False)
        clip = (clip - torch.tensor(MEAN)[:, None, None, None]) / torch.tensor(STD)[:, None, None, None]
        clips += spatial_crops(clip)
    return torch.stack(clips)


def spatial_crops(clip: torch.Tensor) -> list[torch.Tensor]:
    """Three SIZE x SIZE crops of a (3, T, H, W) clip along its long side: start, centre, end."""
    height, width = clip.shape[-2:]
    crops = []
    for place in range(CROPS):
        top, left = math.ceil((height - SIZE) / 2), math.ceil((width - SIZE) / 2)
        if height > width:
            top = {0: 0, 1: top, 2: height - SIZE}[place]
        else:
            left = {0: 0, 1: left, 2: width - SIZE}[place]
        crops.append(clip[..., top:top + SIZE, left:left + SIZE])
    return crops


def video_features(path: str, max_seconds: float = MAX_SECONDS) -> torch.Tensor:
    """A video file -> its (15, 3, 2, 224, 224) frame pairs for ImageBind's vision branch."""
    return video_clips(load_video_frames(path, max_seconds))


__all__ = ["CLIPS_PER_VIDEO", "VIDEO_CLIPS", "load_video_frames", "video_clips", "video_features"]
