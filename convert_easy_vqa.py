"""Turn the `easy-vqa` package (offline: 64x64 shapes, 13 answers) into NextGPT training data.

Writes into --output_dir:
- `stage1_captions.jsonl`: {"id", "image", "caption": "a {colour} {shape}"} for each train image whose colour and shape
  its questions reveal (stage 1);
- `stage2_train.json`: LLaVA records, one multi-turn conversation per train image with all its questions (stage 2);
- `test.json`: LLaVA records, one per test question, with `question_type` (shape, colour, yes/no) for eval_vqa.py.
Image paths are absolute (inside the installed package), so no --image_folder is needed.

    python convert_easy_vqa.py --output_dir data/easy_vqa
"""

import json
import os
import re
from collections import defaultdict

from cli import ArgumentParser

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


def convert(output_dir: str) -> dict[str, int]:
    import easy_vqa

    os.makedirs(output_dir, exist_ok=True)
    counts = {}
    questions, answers, image_ids = easy_vqa.get_train_questions()
    paths = easy_vqa.get_train_image_paths()
    per_image = defaultdict(list)
    for question, answer, image_id in zip(questions, answers, image_ids):
        per_image[image_id].append((question, answer))

    captions, conversations = [], []
    for image_id in sorted(per_image):
        pairs = per_image[image_id]
        facts = image_facts([q for q, _ in pairs], [a for _, a in pairs])
        if {"colour", "shape"} <= facts.keys():
            captions.append({"id": f"train-{image_id}", "image": paths[image_id],
                             "caption": f"a {facts['colour']} {facts['shape']}"})
        turns = []
        for number, (question, answer) in enumerate(pairs):
            turns.append({"from": "human", "value": f"<image>\n{question}" if number == 0 else question})
            turns.append({"from": "gpt", "value": answer})
        conversations.append({"id": f"train-{image_id}", "image": paths[image_id], "conversations": turns})

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
    args = parser.parse_args()
    for name, count in convert(args.output_dir).items():
        print(f"{name}: {count}")


if __name__ == "__main__":
    main()
