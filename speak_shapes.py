"""Spoken easy-VQA: espeak-ng says the colours and shapes; questions about the word heard, alone or beside a picture.

The data of the audio demo (issue 17), made offline: Debian's `espeak-ng` speaks each of easy-VQA's eight colours and
three shapes in many voices, speeds and pitches, written as 16 kHz WAV files. Four kinds of question, as LLaVA records
with `question_type` (what `eval_vqa.py` breaks accuracy down by):
- "spoken colour": a colour word is heard; what colour is named?
- "spoken shape": a shape word is heard; what shape is named?
- "spoken vs picture": a picture drawn by `draw_shapes.py` and a colour word; is the spoken colour the shape's colour?
  (yes and no equally often).
- "picture colour": a picture alone; what colour is the shape? (what "spoken vs picture" compares the word with: a
  model that was only told the pictures' colours in stage 1's captions answered "spoken vs picture" at chance).
The test split is spoken by voices that the training split never uses, so its accuracy says whether the model hears
the word rather than the voice; `eval_vqa.py --blank_media` gives the baseline that hears silence. `captions.json`
pairs each training clip with the word said and each picture with its colour and shape, for stage 1:

    apt-get install espeak-ng
    python speak_shapes.py --output_dir data/spoken_shapes --num_train 4000 --num_test 800
    python eval_vqa.py --model MODEL --data data/spoken_shapes/test.json --image_folder data/spoken_shapes
"""

import json
import os
import random
import shutil
import subprocess
import tempfile

import numpy as np
from tqdm.auto import tqdm

from audio_features import SAMPLE_RATE
from cli import ArgumentParser, at_least
from draw_shapes import COLOURS, SHAPES, draw_picture

# espeak-ng voices (language, with a +variant: other speakers); the test split's are never heard in training.
TRAIN_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-us+f3", "en-gb+f4", "en-us+m3", "en-us+m7",
                "en-gb+f1", "en-us+m5")
TEST_VOICES = ("en-029", "en-gb-x-gbcwmd+f2")
SPEEDS, PITCHES = (120, 230), (20, 80)  # words a minute and espeak's 0-99 pitch: drawn evenly in these ranges
PADDING_SECONDS = 0.3  # silence before and after the word
QUESTIONS = {
    "spoken colour": ("What colour is named?", "Which colour does the speaker say?", "What colour do you hear?"),
    "spoken shape": ("What shape is named?", "Which shape does the speaker say?", "What shape do you hear?"),
    "spoken vs picture": ("Is the spoken colour the colour of the shape?", "Does the shape have the colour you hear?",
                          "Is the shape the colour that is said?"),
    "picture colour": ("What colour is the shape?", "Which colour does the shape have?", "What is the shape's colour?"),
}
PICTURE_KINDS = ("spoken vs picture", "picture colour")


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(word: str, *, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's rendering of `word`, mono float32 at 16 kHz, with PADDING_SECONDS of silence each side."""
    import soundfile
    import soxr

    if not espeak_available():
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "word.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", path, word], check=True,
                       capture_output=True)
        samples, rate = soundfile.read(path, dtype="float32")
    samples = soxr.resample(samples, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else samples
    padding = np.zeros(int(PADDING_SECONDS * SAMPLE_RATE), np.float32)
    return np.concatenate([padding, samples, padding])


def make_split(*, output_dir: str, split: str, num_questions: int, voices: tuple[str, ...], seed: int) -> list[dict]:
    """`num_questions` records (the kinds in turn) with their WAV files (and pictures) under `output_dir`."""
    import soundfile

    rng = random.Random(seed)
    for folder in ("audio", "images"):
        os.makedirs(os.path.join(output_dir, folder, split), exist_ok=True)
    kinds, records = list(QUESTIONS), []
    for index in tqdm(range(num_questions), desc=f"Speaking {split}", unit="question"):
        kind = kinds[index % len(kinds)]
        shape, colour = rng.choice(SHAPES), rng.choice(list(COLOURS))
        record = {"id": f"spoken-{split}-{index}", "question_type": kind}
        if kind in PICTURE_KINDS:
            picture, _ = draw_picture(rng, shape, colour)
            record["image"] = os.path.join("images", split, f"{index}.png")
            record["picture"] = {"shape": shape, "colour": colour}
            picture.save(os.path.join(output_dir, record["image"]))
        if kind == "picture colour":  # no audio: the picture's colours, which "spoken vs picture" compares with
            prompt, answer = "<image>\n", colour
        else:
            if kind == "spoken vs picture":
                same = index // len(kinds) % 2 == 0
                spoken_word = colour if same else rng.choice([other for other in COLOURS if other != colour])
                prompt, answer = "<image>\n<audio>\n", "yes" if same else "no"
            else:
                spoken_word = colour if kind == "spoken colour" else shape
                prompt, answer = "<audio>\n", spoken_word
            voice = rng.choice(voices)
            speed, pitch = rng.randint(*SPEEDS), rng.randint(*PITCHES)
            record["audio"] = os.path.join("audio", split, f"{index}.wav")
            soundfile.write(os.path.join(output_dir, record["audio"]),
                            speak(spoken_word, voice=voice, speed=speed, pitch=pitch), SAMPLE_RATE)
            record["speech"] = {"word": spoken_word, "voice": voice, "speed": speed, "pitch": pitch}
        record["conversations"] = [{"from": "human", "value": prompt + rng.choice(QUESTIONS[kind])},
                                   {"from": "gpt", "value": answer}]
        records.append(record)
    with open(os.path.join(output_dir, f"{split}.json"), "w") as handle:
        json.dump(records, handle, indent=0)
    return records


def stage1_captions(records: list[dict]) -> list[dict]:
    """Caption records for stage 1: each clip with what is said in it, each picture with its shape and colour."""
    captions = []
    for record in records:
        if "speech" in record:
            captions.append({"id": f"{record['id']}-audio", "audio": record["audio"],
                             "caption": f"a voice saying \"{record['speech']['word']}\""})
        if "picture" in record:
            captions.append({"id": f"{record['id']}-image", "image": record["image"],
                             "caption": f"a {record['picture']['colour']} {record['picture']['shape']}"})
    return captions


def main() -> None:
    parser = ArgumentParser(__doc__)
    parser.add_argument("--output_dir", default="data/spoken_shapes")
    parser.add_argument("--num_train", type=at_least(1), default=4000, help="training questions (the kinds in turn)")
    parser.add_argument("--num_test", type=at_least(1), default=800,
                        help="test questions, in voices training never hears")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not espeak_available():
        parser.error("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    train = make_split(output_dir=args.output_dir, split="train", num_questions=args.num_train, voices=TRAIN_VOICES,
                       seed=args.seed)
    make_split(output_dir=args.output_dir, split="test", num_questions=args.num_test, voices=TEST_VOICES,
               seed=args.seed + 1)
    with open(os.path.join(args.output_dir, "captions.json"), "w") as handle:
        json.dump(stage1_captions(train), handle, indent=0)
    print(f"{args.num_train} training questions (train.json, captions.json), {args.num_test} test questions "
          f"(test.json) in {args.output_dir}")


if __name__ == "__main__":
    main()
