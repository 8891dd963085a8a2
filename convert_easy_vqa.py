"""Turn the `easy-vqa` package (offline: 64x64 shapes, 13 answers) into NextGPT training data.

Writes into --output_dir:
- `stage1_captions.jsonl`: {"id", "image", "caption": "a {colour} {shape}"} for each train image whose colour and shape
  its questions reveal (stage 1);
- `stage2_train.json`: LLaVA records, one multi-turn conversation per train image with all its questions (stage 2);
- `test.json`: LLaVA records, one per test question, with `question_type` (shape, colour, yes/no) for eval_vqa.py.
Image paths are absolute (inside the installed package, or `augmented/` in --output_dir), so no --image_folder is
needed.

easy-VQA draws every shape 9 to 34 pixels wide on a 64 x 64 canvas, which the tower sees upscaled and blurred; a model
trained on those alone names colours poorly on other pictures (canvas 224: 62% right, `benchmarks/EASY_VQA.md`).
`--augment K` adds K re-renderings of each training picture, with all its questions and captions: its own shape, cut
out of the picture, turned, scaled to a tenth to nine tenths of a new canvas of 48 to 320 pixels, placed anywhere, with
sharp or soft edges, on a new light background.

`--shuffle_turns` asks each conversation's questions in a random order. easy-VQA lists a picture's "what" questions
first, so in its order a yes/no question almost never opens a conversation (6 of 10,358 colour questions answered
yes): the model learns them with the colour already said in earlier turns, and answers them alone (as every test
question comes) poorly on unfamiliar pictures.

    python convert_easy_vqa.py --output_dir data/easy_vqa --augment 2 --shuffle_turns
"""

import json
import os
import random
import re
from collections import defaultdict

import numpy as np
from PIL import Image

from cli import ArgumentParser, at_least
from draw_shapes import COLOURS, background

SHAPES = {"circle", "rectangle", "triangle"}


def question_type(answer: str) -> str:
    return "yes/no" if answer in ("yes", "no") else "shape" if answer in SHAPES else "colour"


def image_facts(questions: list[str], answers: list[str]) -> dict:
    """Colour and shape of an image, where its questions give them away."""
    facts = {}
    for question, answer in zip(questions, answers):
        if question_type(answer) == "shape":
            facts["shape"] = answer
            named_colour = re.match(r"what is the (\w+) shape\?", question)
            if named_colour:
                facts["colour"] = named_colour.group(1)
        elif question_type(answer) == "colour":
            facts["colour"] = answer
    return facts


MIN_EXTENT = 10  # pixels: a smaller shape with soft edges has no pixel of its own colour left (teal turns gray)


def binarised(mask: Image.Image) -> Image.Image:
    """A coverage mask with its soft edge cut at half: sharp edges."""
    return mask.point(lambda value: 255 if value > 127 else 0)


def shape_mask(picture: Image.Image) -> Image.Image:
    """The shape's coverage (0-255, soft at anti-aliased edges) in an easy-VQA picture, cropped to the shape: how far
    each pixel lies from the background (the border's median colour) as a share of the farthest pixel's distance."""
    pixels = np.asarray(picture.convert("RGB"), dtype=np.float32)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    distance = np.linalg.norm(pixels - np.median(border, axis=0), axis=-1)
    coverage = np.clip(distance / max(distance.max(), 1.0), 0, 1)
    mask = Image.fromarray(np.round(coverage * 255).astype(np.uint8))
    return mask.crop(binarised(mask).getbbox())


def rerender(shape: Image.Image, colour: str, rng: random.Random) -> Image.Image:
    """A picture's shape (its `shape_mask`) in `colour`, turned by any angle, scaled to a tenth to nine tenths of a new
    light canvas of 48 to 320 pixels (at least MIN_EXTENT) and placed anywhere on it (up to a fifth off the edge), with
    soft or sharp edges."""
    size = rng.choice((48, 64, 96, 128, 160, 224, 320))
    canvas = background(rng, size, rng.choice(("flat", "gradient", "speckled")))
    mask = shape.rotate(rng.uniform(0, 360), resample=Image.Resampling.BICUBIC, expand=True)
    extent = max(MIN_EXTENT, round(rng.uniform(0.1, 0.9) * size))
    scale = extent / max(mask.size)
    mask = mask.resize((max(1, round(mask.width * scale)), max(1, round(mask.height * scale))),
                       Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        mask = binarised(mask)
    left = rng.randint(-mask.width // 5, size - mask.width + mask.width // 5)
    top = rng.randint(-mask.height // 5, size - mask.height + mask.height // 5)
    canvas.paste(Image.new("RGB", mask.size, COLOURS[colour]), (left, top), mask)
    return canvas


def conversation_record(record_id: str, image: str, pairs: list[tuple[str, str]]) -> dict:
    turns = []
    for number, (question, answer) in enumerate(pairs):
        turns.append({"from": "human", "value": f"<image>\n{question}" if number == 0 else question})
        turns.append({"from": "gpt", "value": answer})
    return {"id": record_id, "image": image, "conversations": turns}


def convert(output_dir: str, augment: int = 0, seed: int = 0, shuffle_turns: bool = False) -> dict[str, int]:
    import easy_vqa

    os.makedirs(output_dir, exist_ok=True)
    counts = {}
    questions, answers, image_ids = easy_vqa.get_train_questions()
    paths = easy_vqa.get_train_image_paths()
    per_image = defaultdict(list)
    for question, answer, image_id in zip(questions, answers, image_ids):
        per_image[image_id].append((question, answer))

    rng = random.Random(seed)
    turn_rng = random.Random(f"{seed}-turns")  # its own stream: the re-renderings stay those of --seed
    augmented_folder = os.path.abspath(os.path.join(output_dir, "augmented"))
    if augment:
        os.makedirs(augmented_folder, exist_ok=True)
    captions, conversations = [], []
    for image_id in sorted(per_image):
        pairs = per_image[image_id]
        facts = image_facts([q for q, _ in pairs], [a for _, a in pairs])
        versions = [(f"train-{image_id}", paths[image_id])]
        if augment and "colour" in facts:  # a re-rendering needs the colour, which most pictures' questions give
            shape = shape_mask(Image.open(paths[image_id]))
            for copy in range(augment):
                path = os.path.join(augmented_folder, f"{image_id}_{copy}.png")
                rerender(shape, facts["colour"], rng).save(path)
                versions.append((f"train-{image_id}-augmented-{copy}", path))
        for record_id, image in versions:
            if {"colour", "shape"} <= facts.keys():
                captions.append({"id": record_id, "image": image, "caption": f"a {facts['colour']} {facts['shape']}"})
            conversations.append(conversation_record(
                record_id, image, turn_rng.sample(pairs, len(pairs)) if shuffle_turns else pairs))

    test_questions, test_answers, test_image_ids = easy_vqa.get_test_questions()
    test_paths = easy_vqa.get_test_image_paths()
    test = [
        {"id": f"test-{number}", "image": test_paths[image_id], "question_type": question_type(answer),
         "conversations": [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}]}
        for number, (question, answer, image_id) in enumerate(zip(test_questions, test_answers, test_image_ids))
    ]
    with open(os.path.join(output_dir, "stage1_captions.jsonl"), "w") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in captions)
    for name, records in (("stage2_train.json", conversations), ("test.json", test)):
        with open(os.path.join(output_dir, name), "w") as handle:
            json.dump(records, handle)
    counts.update(captions=len(captions), conversations=len(conversations),
                  train_questions=len(questions), test_questions=len(test))
    return counts


def main() -> None:
    parser = ArgumentParser(__doc__)
    parser.add_argument("--output_dir", default="data/easy_vqa")
    parser.add_argument("--augment", type=at_least(0), default=0, help="re-rendered copies of each training picture")
    parser.add_argument("--seed", type=int, default=0, help="of the re-renderings and the question orders")
    parser.add_argument("--shuffle_turns", action="store_true", help="ask each picture's questions in a random order")
    args = parser.parse_args()
    counts = convert(args.output_dir, args.augment, args.seed, shuffle_turns=args.shuffle_turns)
    for name, count in counts.items():
        print(f"{name}: {count}")


if __name__ == "__main__":
    main()
