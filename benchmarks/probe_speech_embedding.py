"""Does an offline speech encoder tell spoken words apart? A linear probe for issue 17's audio demo.

The audio demo needs a pretrained encoder that installs offline from a package registry. `openwakeword==0.4.0` (exactly
that version: later ones download their models on first use) ships two ONNX models in its wheel: a log-mel front end
(16 kHz, 32 mel bins, 10 ms hop) and Google's `speech_embedding` network (a 20-layer CNN trained for keyword spotting:
76 frames, about 0.8 s, to one 96-d vector, slid every 80 ms), run here by their torch port, speech_embedding.py. This
speaks the easy-VQA colours and shapes with espeak-ng (Debian's `espeak-ng`) in several voices, speeds and pitches,
mean-pools each clip's embeddings, and fits a standardised linear classifier of the word, holding out one voice at a
time; the mean log-mel spectrum is the baseline that needs no network. CPU, about a minute:

    apt-get install espeak-ng && pip install openwakeword==0.4.0
    python benchmarks/probe_speech_embedding.py --output results/probe_speech_embedding.json
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from audio_features import SAMPLE_RATE  # noqa: E402
from speech_embedding import SpeechEmbedding  # noqa: E402

WORDS = ["red", "green", "blue", "black", "gray", "teal", "brown", "yellow", "circle", "rectangle", "triangle"]
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us+f3", "en-gb+f4", "en-us+m3",
          "en-gb-x-gbcwmd+f2", "en-us+m7"]
SPEEDS, PITCHES = (130, 175, 220), (35, 65)


def spoken(word: str, *, voice: str, speed: int, pitch: int, folder: str) -> np.ndarray:
    """espeak-ng's rendering at 16 kHz, centred in at least 1.5 s, as 16-bit sample values (openwakeword's input)."""
    import soundfile
    from scipy.signal import resample_poly

    path = os.path.join(folder, f"{word}_{voice}_{speed}_{pitch}.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", path, word], check=True)
    audio, rate = soundfile.read(path)
    audio = resample_poly(audio, SAMPLE_RATE // 100, rate // 100)
    pad = max(0, int(1.5 * SAMPLE_RATE) - len(audio))
    return (np.pad(audio, (pad // 2, pad - pad // 2)) * 32767).astype(np.float32)


@torch.no_grad()
def clip_features(encoder: SpeechEmbedding, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean of the clip's 96-d embeddings, mean of its log-mel frames)."""
    samples = torch.from_numpy(audio)[None]
    return encoder(samples)[0].mean(0).numpy(), encoder.front_end(samples)[0].mean(0).numpy()


def leave_one_voice_out(features: np.ndarray, words: np.ndarray, voices: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    correct = 0
    for voice in VOICES:
        held = voices == voice
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
        classifier.fit(features[~held], words[~held])
        correct += int((classifier.predict(features[held]) == words[held]).sum())
    return correct / len(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", help="write the accuracies here as JSON")
    args = parser.parse_args()
    from tqdm.auto import tqdm

    encoder, rows = SpeechEmbedding.from_openwakeword(), []
    settings = list(itertools.product(WORDS, VOICES, SPEEDS, PITCHES))
    with tempfile.TemporaryDirectory() as folder:
        for word, voice, speed, pitch in tqdm(settings, desc="Speaking and embedding", unit="clip"):
            audio = spoken(word, voice=voice, speed=speed, pitch=pitch, folder=folder)
            rows.append((word, voice, *clip_features(encoder, audio)))
    words, voices = np.array([row[0] for row in rows]), np.array([row[1] for row in rows])
    espeak = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.split("  ")[0]
    result = {"clips": len(rows), "espeak_ng": espeak, "words": WORDS, "voices": VOICES, "speeds": SPEEDS,
              "pitches": PITCHES, "chance": 1 / len(WORDS),
              "speech_embedding_accuracy": leave_one_voice_out(np.stack([row[2] for row in rows]), words, voices),
              "mean_log_mel_accuracy": leave_one_voice_out(np.stack([row[3] for row in rows]), words, voices)}
    print(json.dumps(result, indent=1))
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
