"""speech_embedding.py (issue 17's offline speech encoder) against onnxruntime running openwakeword 0.4.0's own ONNX
files: the log-mel front end, the network, and both together, in float32."""

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("openwakeword")
from speech_embedding import (MIN_SAMPLES, WINDOW_FRAMES, WINDOW_STRIDE, SpeechEmbedding,  # noqa: E402
                              openwakeword_model_files)


@pytest.fixture(scope="module")
def encoders():
    front_end_path, network_path = openwakeword_model_files()
    return (SpeechEmbedding.from_openwakeword(), ort.InferenceSession(front_end_path),
            ort.InferenceSession(network_path))


def clip(seed: int, seconds: float = 1.5) -> np.ndarray:
    """A tone swelling and fading under noise, at 16-bit scale (openwakeword's input)."""
    time = np.arange(int(16000 * seconds)) / 16000
    noise = np.random.default_rng(seed).standard_normal(len(time))
    return (8000 * np.sin(2 * np.pi * (300 + 100 * seed) * time) * np.sin(2 * np.pi * 2 * time) + 500 * noise).astype(
        np.float32)


def test_front_end_network_and_both_match_onnxruntime(encoders):
    ours, front_end, network = encoders
    audio = clip(0)
    frames = front_end.run(None, {"input": audio[None]})[0].squeeze() / 10 + 2  # as openwakeword transforms them
    windows = np.stack([frames[start:start + WINDOW_FRAMES]
                        for start in range(0, len(frames) - WINDOW_FRAMES + 1, WINDOW_STRIDE)])
    expected = network.run(None, {"input_1": windows[..., None]})[0].reshape(len(windows), -1)
    with torch.no_grad():
        torch.testing.assert_close(ours.front_end(torch.from_numpy(audio)[None])[0], torch.from_numpy(frames),
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.network(torch.from_numpy(windows)), torch.from_numpy(expected),
                                   atol=1e-4, rtol=1e-5)  # outputs reach 45
        embeddings = ours(torch.from_numpy(audio)[None])
    assert embeddings.shape == (1, 9, 96)  # 1.5 s: 147 frames, a window every 8 from 0 to 64
    torch.testing.assert_close(embeddings[0], torch.from_numpy(expected), atol=1e-4, rtol=1e-5)


def test_clips_of_a_batch_are_independent_and_short_clips_are_refused(encoders):
    ours = encoders[0]
    loud, quiet = clip(1), clip(2) / 100  # each clip's 80 dB floor is its own
    with torch.no_grad():
        batch = ours(torch.from_numpy(np.stack([loud, quiet])))
        for row, audio in zip(batch, (loud, quiet)):
            torch.testing.assert_close(row, ours(torch.from_numpy(audio)[None])[0], atol=1e-4, rtol=1e-5)
        assert ours(torch.zeros(1, MIN_SAMPLES)).shape == (1, 1, 96)
        with pytest.raises(ValueError, match=r"a clip of 0\.500 s is too short for the speech encoder: it needs 76 "
                                             r"frames, 0\.782 s"):
            ours(torch.zeros(1, 8000))
