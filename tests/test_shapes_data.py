"""The generalisation test set (`draw_shapes.py`, committed in benchmarks/shapes_test) and the training augmentation
that re-renders easy-VQA's own shapes (`convert_easy_vqa.py --augment`)."""

import json
import random
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT
from convert_easy_vqa import convert, rerender, shape_mask
from draw_shapes import COLOURS, SHAPES, draw_picture, write_test_set

EASY_VQA_ANSWERS = set(COLOURS) | set(SHAPES) | {"yes", "no"}
COMMITTED = REPO_ROOT / "benchmarks" / "shapes_test"


def test_the_committed_test_set_is_what_the_generator_draws(tmp_path):
    """The set is fixed by its seed: the first pictures and questions drawn again are those committed."""
    write_test_set(str(tmp_path), num_images=12, seed=0)
    committed = json.load(open(COMMITTED / "test.json"))
    drawn = json.load(open(tmp_path / "test.json"))
    assert drawn == committed[:len(drawn)] and len(committed) == 1920
    for index in range(12):
        assert (tmp_path / "images" / f"{index}.png").read_bytes() == (COMMITTED / "images" / f"{index}.png").read_bytes()


def test_every_question_is_answered_by_its_picture():
    """Each picture: one shape and one colour question, one yes and one no; the answers are easy-VQA's words, and the
    picture really holds the colour (its exact RGB where edges are sharp, the nearest of the eight where they are
    soft)."""
    records = json.load(open(COMMITTED / "test.json"))
    per_picture = {}
    for record in records:
        per_picture.setdefault(record["image"], []).append(record)
    assert len(per_picture) == 480
    for image, questions in per_picture.items():
        kinds = Counter(record["question_type"] for record in questions)
        answers = [record["conversations"][1]["value"] for record in questions]
        assert kinds == {"shape": 1, "colour": 1, "yes/no": 2} and set(answers) <= EASY_VQA_ANSWERS
        assert sorted(a for r, a in zip(questions, answers) if r["question_type"] == "yes/no") == ["no", "yes"]
    colour_of = {r["image"]: r["conversations"][1]["value"] for r in records if r["question_type"] == "colour"}
    sharp = {r["image"] for r in records if not r["drawing"]["antialiased"]}
    for image in sorted(sharp)[:40]:
        pixels = np.asarray(Image.open(COMMITTED / image).convert("RGB")).reshape(-1, 3)
        assert (pixels == COLOURS[colour_of[image]]).all(1).any(), image
    counts = Counter(colour_of.values())
    assert set(counts) == set(COLOURS) and max(counts.values()) - min(counts.values()) <= 1


def test_pictures_vary_in_canvas_extent_edges_and_background():
    rng = random.Random(1)
    drawings = [draw_picture(rng, "triangle", "teal")[1] for _ in range(60)]
    assert {d["canvas"] for d in drawings} == {64, 96, 128, 224}
    assert {d["antialiased"] for d in drawings} == {True, False}
    assert {d["background"] for d in drawings} == {"flat", "gradient", "speckled"}
    extents = [d["extent"] for d in drawings]
    assert min(extents) < 0.2 and max(extents) > 0.8


def easy_vqa_picture(colour: str) -> Image.Image:
    import easy_vqa

    questions, answers, image_ids = easy_vqa.get_train_questions()
    image_id = next(i for q, a, i in zip(questions, answers, image_ids)
                    if q == "what color is the shape?" and a == colour)
    return Image.open(easy_vqa.get_train_image_paths()[image_id])


@pytest.mark.parametrize("colour", ["yellow", "black", "teal"])
def test_a_rerendering_keeps_the_shape_and_its_colour(colour):
    """The shape is cut out of its easy-VQA picture (its mask covers it and little else), and every re-rendering is a
    new canvas that holds the colour, at varied sizes."""
    picture = easy_vqa_picture(colour)
    mask = np.asarray(shape_mask(picture)) > 127
    pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3)
    exact = (pixels == COLOURS[colour]).all(1).sum()  # the shape's inside; its anti-aliased edge is in the mask too
    assert exact <= mask.sum() <= 2 * exact
    rng = random.Random(0)
    sizes = set()
    for _ in range(12):
        rendered = rerender(shape_mask(picture), colour, rng)
        sizes.add(rendered.size[0])
        near = np.abs(np.asarray(rendered, dtype=int) - COLOURS[colour]).sum(-1) < 30
        assert near.sum() >= 4, rendered.size
    assert len(sizes) >= 4


def test_convert_adds_rerendered_copies_with_the_same_questions(tmp_path, monkeypatch):
    import easy_vqa

    questions, answers, image_ids = easy_vqa.get_train_questions()
    keep = [index for index, image_id in enumerate(image_ids) if image_id < 20]
    monkeypatch.setattr(easy_vqa, "get_train_questions", lambda: tuple(
        [column[index] for index in keep] for column in (questions, answers, image_ids)))
    counts = convert(str(tmp_path), augment=2)
    conversations = json.load(open(tmp_path / "stage2_train.json"))
    original = {record["id"]: record for record in conversations if "augmented" not in record["id"]}
    copied = {record["id"].split("-augmented-")[0] for record in conversations if "augmented" in record["id"]}
    assert len(original) == 20 and len(copied) >= 18  # a picture whose questions never name its colour is not copied
    assert counts["conversations"] == len(conversations) == 20 + 2 * len(copied)
    for record in conversations:
        source = original[record["id"].split("-augmented-")[0]]
        assert record["conversations"] == source["conversations"]
        assert Image.open(record["image"]).size[0] >= 48
    captions = [json.loads(line) for line in open(tmp_path / "stage1_captions.jsonl")]
    assert sum("augmented" in c["id"] for c in captions) == 2 * sum("augmented" not in c["id"] for c in captions)

    convert(str(tmp_path / "shuffled"), augment=2, shuffle_turns=True)
    shuffled = json.load(open(tmp_path / "shuffled" / "stage2_train.json"))
    reordered = 0
    for record, source in zip(shuffled, conversations, strict=True):
        assert record["id"] == source["id"] and record["conversations"][0]["value"].startswith("<image>\n")
        assert sorted(question_answer_pairs(record)) == sorted(question_answer_pairs(source))
        assert Image.open(record["image"]).tobytes() == Image.open(source["image"]).tobytes()  # same re-renderings
        reordered += question_answer_pairs(record) != question_answer_pairs(source)
    assert reordered > len(shuffled) // 2


def question_answer_pairs(record: dict) -> list[tuple[str, str]]:
    """A conversation's (question, answer) turns in order, without the image placeholder."""
    values = [turn["value"].removeprefix("<image>\n") for turn in record["conversations"]]
    return list(zip(values[::2], values[1::2]))
