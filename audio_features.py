"""ImageBind's audio preprocessing: an audio file -> a 16 kHz waveform -> three 2-second clips -> 128-bin log-mel
spectrograms of 204 frames, normalised as the audio branch was trained (`imagebind_audio.ImageBindAudioModel` takes
them). Files are decoded by `soundfile` and resampled by `soxr` (the `audio` extra).

The filterbank is Kaldi's `fbank` with ImageBind's settings (25 ms Hann windows every 10 ms, DC offset removed,
pre-emphasis 0.97, power spectrum, 128 triangular mel filters from 20 Hz to Nyquist, natural log), written here with
torch: torchaudio, whose `compliance.kaldi.fbank` ImageBind calls, is not installable beside the torch this project
uses, and kaldi-native-fbank refuses 128 bins at 16 kHz. `tests/test_audio_features.py` checks it against torchaudio's
own implementation and the whole preprocessing against Meta's code.
"""

import functools
import math
import os
import re
from fractions import Fraction

import torch

SAMPLE_RATE = 16000
CLIP_SECONDS = 2
CLIPS_PER_AUDIO = 3
NUM_MEL_BINS = 128
TARGET_FRAMES = 204  # 2 s at a 10 ms hop
FRAME_MS, HOP_MS = 25, 10
LOW_FREQUENCY = 20.0
PREEMPHASIS = 0.97
MEAN, STD = -4.268, 9.138  # ImageBind's normalisation of the log-mel values
MAX_SECONDS = 600.0  # longer audio is refused before decoding (three 2-second clips are all ImageBind looks at)


def mel(frequency: float | torch.Tensor) -> float | torch.Tensor:
    """Kaldi's mel scale, of one frequency or a tensor of them."""
    log = torch.log if torch.is_tensor(frequency) else math.log
    return 1127.0 * log(1.0 + frequency / 700.0)


@functools.lru_cache(maxsize=8)  # the same filters serve every frame of every clip
def mel_filters(num_bins: int, fft_size: int, sample_rate: int) -> torch.Tensor:
    """(num_bins, fft_size // 2 + 1) triangles, evenly spaced on the mel scale from LOW_FREQUENCY to Nyquist; the
    Nyquist bin gets no weight, as in Kaldi."""
    low, high = mel(LOW_FREQUENCY), mel(sample_rate / 2.0)
    edges = low + (high - low) / (num_bins + 1) * torch.arange(num_bins + 2).unsqueeze(1)
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    bins = mel(sample_rate / fft_size * torch.arange(fft_size // 2)).unsqueeze(0)
    triangles = torch.minimum((bins - left) / (centre - left), (right - bins) / (right - centre)).clamp_min(0)
    return torch.nn.functional.pad(triangles, (0, 1))


def log_mel_filterbank(waveform: torch.Tensor, sample_rate: int = SAMPLE_RATE,
                       num_bins: int = NUM_MEL_BINS) -> torch.Tensor:
    """(frames, num_bins) log-mel energies of a 1-D waveform: one frame per 10 ms hop whose 25 ms window fits
    (none for a waveform shorter than one window)."""
    window = int(sample_rate * FRAME_MS / 1000)
    hop = int(sample_rate * HOP_MS / 1000)
    if waveform.numel() < window:
        return waveform.new_zeros(0, num_bins)
    frames = waveform.unfold(0, window, hop)
    frames = frames - frames.mean(dim=1, keepdim=True)
    frames = frames - PREEMPHASIS * torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames * torch.hann_window(window, periodic=False, dtype=frames.dtype, device=frames.device)
    fft_size = 1 << (window - 1).bit_length()
    power = torch.fft.rfft(frames, n=fft_size).abs().pow(2)
    energies = power @ mel_filters(num_bins, fft_size, sample_rate).to(power).T
    return energies.clamp_min(torch.finfo(energies.dtype).eps).log()


def clip_starts(duration_seconds: float, clips: int = CLIPS_PER_AUDIO) -> list[Fraction]:
    """Where ImageBind's 2-second clips start (pytorchvideo's ConstantClipsPerVideoSampler, as ImageBind samples audio
    and video): the latest possible start divided into `clips` equal steps, 0 included; all at 0 for 2 s or less."""
    latest = Fraction(max(duration_seconds - CLIP_SECONDS, 0))
    step = latest / clips
    starts = []
    for index in range(clips):
        starts.append(step * index)
        if step * (index + 1) > latest:
            break
    return starts


def load_audio(path: str, max_seconds: float = MAX_SECONDS) -> torch.Tensor:
    """(channels, samples) float32 at SAMPLE_RATE from an audio file (WAV, FLAC, OGG, MP3: what libsndfile reads,
    through `soundfile`), resampled with `soxr` where the file has another rate. Refuses, naming the file: a missing
    file, what is not audio or cannot be decoded, a WAV or AIFF cut off before the end its header gives, no samples,
    silence (every sample 0), and audio longer than `max_seconds` (from the header, before decoding)."""
    import soundfile
    import soxr

    if not os.path.isfile(path):
        raise ValueError(f"audio {path} not found")
    try:
        info = soundfile.info(path)
    except (soundfile.SoundFileError, OSError) as error:
        raise ValueError(f"audio {path} cannot be read as audio: {error}") from None
    # libsndfile reads a cut-off WAV or AIFF up to where it ends and notes the sizes in its log.
    truncated = re.search(r"^(?:data|SSND)\s*:\s*(\d+) \(should be (\d+)\)", info.extra_info, re.MULTILINE)
    if truncated:
        raise ValueError(f"audio {path} is truncated: {truncated.group(2)} of the {truncated.group(1)} data bytes its "
                         "header gives")
    if info.frames <= 0 or info.samplerate <= 0:
        raise ValueError(f"audio {path} holds no samples")
    if info.frames / info.samplerate > max_seconds:
        raise ValueError(f"audio {path} lasts {info.frames / info.samplerate:.0f} s, more than the {max_seconds:g} s "
                         "allowed")
    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except soundfile.SoundFileError as error:
        raise ValueError(f"audio {path} cannot be decoded: {error}") from None
    if not samples.any():
        raise ValueError(f"audio {path} is silent (every sample is 0)")
    if rate != SAMPLE_RATE:
        samples = soxr.resample(samples, rate, SAMPLE_RATE)
    return torch.from_numpy(samples.T.copy())


def audio_features(waveform: torch.Tensor) -> torch.Tensor:
    """(clips, 1, NUM_MEL_BINS, TARGET_FRAMES) for a (channels, samples) waveform at SAMPLE_RATE: each clip's mean
    removed (over its channels), the first channel's filterbank (as ImageBind: not a mix of the channels), cut or
    zero-padded to TARGET_FRAMES, normalised."""
    if waveform.dim() != 2 or waveform.shape[1] == 0:
        raise ValueError(f"a waveform is (channels, samples) with samples, got shape {tuple(waveform.shape)}")
    clips, waveform = [], waveform.clone()
    for start in clip_starts(waveform.shape[1] / SAMPLE_RATE):
        clip = waveform[:, int(start * SAMPLE_RATE):int((start + CLIP_SECONDS) * SAMPLE_RATE)]
        # In place, as Meta's loader does: clips overlap, and a later clip's overlap keeps the earlier means removed.
        clip -= clip.mean()
        filterbank = log_mel_filterbank(clip[0]).T
        filterbank = filterbank[:, :TARGET_FRAMES]
        filterbank = torch.nn.functional.pad(filterbank, (0, TARGET_FRAMES - filterbank.shape[1]))
        clips.append(((filterbank - MEAN) / STD).unsqueeze(0))
    return torch.stack(clips)


__all__ = ["SAMPLE_RATE", "audio_features", "clip_starts", "load_audio", "log_mel_filterbank"]
