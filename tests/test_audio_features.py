"""ImageBind's audio preprocessing (audio_features.py) against the code it reproduces, fetched from the package
registry at test time (never copied here): torchaudio's `compliance.kaldi.fbank` (pure torch, loaded from the
torchaudio wheel without its compiled library, which does not load beside this torch), pytorchvideo's clip sampler,
and Meta's `imagebind.data.load_and_transform_audio_data` run on them; and reading audio files, bad ones refused."""

import importlib.util
import subprocess
import sys
import tarfile
import types
import zipfile
from pathlib import Path

import pytest
import torch

from audio_features import SAMPLE_RATE, audio_features, clip_starts, load_audio, log_mel_filterbank
from conftest import REPO_ROOT
from test_imagebind_vision import import_meta_imagebind

REFERENCE_PACKAGES = {"torchaudio": "torchaudio==2.9.1", "pytorchvideo": "pytorchvideo==0.1.5"}


def module_from_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict[str, types.ModuleType]:
    """torchaudio's kaldi.py and pytorchvideo's clip_sampling.py, from their distributions."""
    folder = tmp_path_factory.mktemp("audio_references")
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", "torchaudio",
                              *REFERENCE_PACKAGES.values(), "-d", str(folder)], capture_output=True, text=True,
                             timeout=600)
    if fetched.returncode != 0:
        pytest.skip(f"the reference packages could not be fetched: {fetched.stderr.strip().splitlines()[-1:]}")
    with zipfile.ZipFile(next(folder.glob("torchaudio-*.whl"))) as wheel:
        wheel.extract("torchaudio/compliance/kaldi.py", folder)
    with tarfile.open(next(folder.glob("pytorchvideo-*.tar.gz"))) as sdist:
        member = next(m for m in sdist.getmembers() if m.name.endswith("pytorchvideo/data/clip_sampling.py"))
        member.name = "clip_sampling.py"
        sdist.extract(member, folder, filter="data")
    with pytest.MonkeyPatch.context() as patch:  # kaldi.py imports torchaudio and uses it for MFCCs only
        patch.setitem(sys.modules, "torchaudio", types.ModuleType("torchaudio"))
        kaldi = module_from_file("torchaudio_kaldi", folder / "torchaudio" / "compliance" / "kaldi.py")
    clip_sampling = module_from_file("pytorchvideo_clip_sampling", folder / "clip_sampling.py")
    return {"kaldi": kaldi, "clip_sampling": clip_sampling}


def meta_audio_preprocessing(references: dict, waveform: torch.Tensor) -> torch.Tensor:
    """Meta's `load_and_transform_audio_data` on `waveform`: its module imported with the audio references in place
    of torchaudio and pytorchvideo, and stand-ins for what the audio path does not use (video decoding, image
    transforms but Normalize, which is (x - mean) / std)."""
    torchaudio = types.SimpleNamespace(compliance=types.SimpleNamespace(kaldi=references["kaldi"]),
                                       load=lambda path: (waveform.clone(), SAMPLE_RATE))
    pytorchvideo = types.SimpleNamespace(transforms=None)
    normalize = types.SimpleNamespace(Normalize=lambda mean, std: (lambda x: (x - mean) / std))
    data = import_meta_imagebind("data", {
        "torchaudio": torchaudio, "pkg_resources": types.ModuleType("pkg_resources"),
        "pytorchvideo": pytorchvideo, "pytorchvideo.transforms": types.ModuleType("pytorchvideo.transforms"),
        "pytorchvideo.data": types.ModuleType("pytorchvideo.data"),
        "pytorchvideo.data.clip_sampling": references["clip_sampling"],
        "pytorchvideo.data.encoded_video": types.SimpleNamespace(EncodedVideo=None),
        "torchvision": types.SimpleNamespace(transforms=normalize),
    })
    return data.load_and_transform_audio_data(["clip.wav"], "cpu")[0]


@pytest.mark.parametrize("samples", [32000, 33000, 16000 * 7 + 123])
def test_filterbank_matches_torchaudio_kaldi(references, samples):
    torch.manual_seed(samples)
    waveform = torch.randn(samples) * 0.1
    expected = references["kaldi"].fbank(
        waveform[None], htk_compat=True, sample_frequency=SAMPLE_RATE, use_energy=False, window_type="hanning",
        num_mel_bins=128, dither=0.0, frame_length=25, frame_shift=10)
    torch.testing.assert_close(log_mel_filterbank(waveform), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seconds", [0.5, 2.0, 2.5, 3.01, 10.0, 31.7])
def test_clips_start_where_pytorchvideo_starts_them(references, seconds):
    sampler = references["clip_sampling"].ConstantClipsPerVideoSampler(clip_duration=2, clips_per_video=3)
    expected, is_last, end = [], False, 0.0
    while not is_last:
        start, end, _, _, is_last = sampler(end, seconds, annotation=None)
        expected.append(start)
    assert clip_starts(seconds) == expected


@pytest.mark.parametrize("seconds", [1.3, 2.0, 5.5, 12.25])
def test_matches_metas_audio_preprocessing(references, seconds):
    """The spectrograms ImageBind's own data loader makes, clip for clip, for mono and stereo audio."""
    torch.manual_seed(int(seconds * 100))
    for channels in (1, 2):
        waveform = torch.randn(channels, int(seconds * SAMPLE_RATE)) * 0.2 + 0.05
        expected = meta_audio_preprocessing(references, waveform)
        features = audio_features(waveform)
        assert features.shape == expected.shape == (len(clip_starts(seconds)), 1, 128, 204)
        torch.testing.assert_close(features, expected, atol=1e-5, rtol=1e-5)


def test_an_empty_or_misshapen_waveform_is_refused_with_its_shape():
    for waveform in (torch.zeros(1, 0), torch.zeros(16000)):
        with pytest.raises(ValueError, match=r"\(channels, samples\)"):
            audio_features(waveform)


def test_an_audio_file_is_read_as_16_khz_channels(tmp_path):
    import soundfile

    seconds, rate = 2.5, 44100
    time = torch.arange(int(seconds * rate)) / rate
    tone = torch.stack([torch.sin(2 * torch.pi * 440 * time), 0.5 * torch.sin(2 * torch.pi * 880 * time)], dim=1)
    soundfile.write(tmp_path / "stereo.flac", tone.numpy(), rate)
    waveform = load_audio(str(tmp_path / "stereo.flac"))
    assert waveform.shape == (2, int(seconds * SAMPLE_RATE)) and waveform.dtype == torch.float32
    spectrum = torch.fft.rfft(waveform[0]).abs()
    assert abs(spectrum.argmax().item() / seconds - 440) < 1  # the tone survives resampling
    assert audio_features(waveform).shape == (3, 1, 128, 204)


def test_bad_audio_is_refused_naming_the_file_and_the_reason(tmp_path):
    import numpy as np
    import soundfile

    noise = (np.random.default_rng(0).standard_normal(SAMPLE_RATE * 3) * 0.1).astype("float32")
    soundfile.write(tmp_path / "good.wav", noise, SAMPLE_RATE, subtype="PCM_16")
    whole = (tmp_path / "good.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[: len(whole) // 2])
    soundfile.write(tmp_path / "empty.wav", np.zeros((0, 1), dtype="float32"), SAMPLE_RATE)
    soundfile.write(tmp_path / "silent.wav", np.zeros(SAMPLE_RATE, dtype="float32"), SAMPLE_RATE)
    (tmp_path / "picture.wav").write_bytes((REPO_ROOT / "examples" / "red_circle.png").read_bytes())
    cases = {"cut.wav": "is truncated", "empty.wav": "holds no samples", "silent.wav": "is silent",
             "picture.wav": "cannot be read as audio", "good.wav": "lasts 3 s, more than the 2 s allowed"}
    for name, reason in cases.items():
        with pytest.raises(ValueError, match=f"audio {tmp_path / name} {reason}"):
            load_audio(str(tmp_path / name), max_seconds=2)
    with pytest.raises(ValueError, match="missing.wav not found"):
        load_audio(str(tmp_path / "missing.wav"))
    assert load_audio(str(tmp_path / "good.wav")).shape == (1, 3 * SAMPLE_RATE)
