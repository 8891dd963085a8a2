"""Shape pictures drawn independently of easy-VQA, with its questions: the default model's generalisation test.

easy-VQA renders one shape (circle, rectangle, triangle) in one of eight colours on a 64x64 lightly tinted background.
This draws the same shapes in the same eight RGB colours with PIL, but with its own geometry: canvases of 64 to 224
pixels, shapes from a tenth to nine tenths of the canvas anywhere in it (partly cut off at the edges), rectangles of any
aspect, triangles of any shape and turn, edges sharp or anti-aliased, backgrounds tinted, graded or speckled. Each
picture gets easy-VQA's kinds of question (its wordings): its shape, its colour, and yes/no questions about a shape or
colour that is or is not there (as many yes as no). The records are the LLaVA format `eval_vqa.py` reads, with
`question_type` (shape, colour, yes/no) and `drawing` (how the picture was drawn, for breaking the results down):

    python draw_shapes.py --output_dir data/shapes_test --num_images 500 --seed 0
    python eval_vqa.py --model MODEL --data data/shapes_test/test.json --image_folder data/shapes_test
"""

import json
import math
import os
import random

import numpy as np
from PIL import Image, ImageDraw

from cli import ArgumentParser, at_least

# easy-VQA's colours, by their RGB values in its images.
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
           "teal": (0, 128, 128), "brown": (165, 42, 42), "gray": (128, 128, 128), "black": (0, 0, 0)}
SHAPES = ("circle", "rectangle", "triangle")
SHAPE_QUESTIONS = ("what shape is in the image?", "what shape does the image contain?", "what shape is present?",
                   "what is the {colour} shape?")
COLOUR_QUESTIONS = ("what color is the shape?", "what color is the {shape}?", "what is the color of the {shape}?",
                    "what is the color of the shape?")
# (wording, whether a "yes" means the thing is there); {thing} is "a red shape" or "a circle".
PRESENCE_QUESTIONS = (("is there {thing}?", True), ("is there {thing} in the image?", True),
                      ("does the image contain {thing}?", True), ("is {thing} present?", True),
                      ("is there not {thing}?", False), ("is there not {thing} in the image?", False),
                      ("does the image not contain {thing}?", False), ("is no {thing_without_article} present?", False))
SUPERSAMPLE = 4  # anti-aliased pictures are drawn this many times larger, then reduced


def background(rng: random.Random, size: int, kind: str) -> Image.Image:
    """A light background: a flat tint, a gradient between two tints, or a tint with faint speckles."""
    def tint() -> tuple[int, ...]:
        return tuple(rng.randint(215, 255) for _ in range(3))

    if kind == "flat":
        return Image.new("RGB", (size, size), tint())
    if kind == "gradient":  # along the diagonal, from the top-left corner's tint to the bottom-right's
        start, end = (np.array(colour, dtype=np.float64) for colour in (tint(), tint()))
        t = (np.arange(size)[:, None] + np.arange(size)[None, :])[..., None] / (2 * size - 2)
        return Image.fromarray(np.rint(start + (end - start) * t).astype(np.uint8))
    image = Image.new("RGB", (size, size), tint())
    draw = ImageDraw.Draw(image)
    for _ in range(size * size // 40):
        x, y = rng.randrange(size), rng.randrange(size)
        draw.point((x, y), fill=tint())
    return image


def shape_outline(rng: random.Random, shape: str, size: int, extent: float) -> tuple[str, list]:
    """PIL drawing call and coordinates of one shape `extent` pixels across, centred anywhere (up to a fifth of it may
    fall off the edge)."""
    centre_x, centre_y = (rng.uniform(extent * 0.3, size - extent * 0.3) for _ in range(2))
    if shape == "circle":
        radius = extent / 2
        return "ellipse", [centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius]
    if shape == "rectangle":
        aspect = rng.uniform(0.4, 2.5)
        width, height = extent * min(1.0, aspect), extent * min(1.0, 1 / aspect)
        return "rectangle", [centre_x - width / 2, centre_y - height / 2, centre_x + width / 2, centre_y + height / 2]
    turn = rng.uniform(0, 2 * math.pi)  # corners a third of a turn apart, each moved up to a twelfth either way
    angles = [turn + index * 2 * math.pi / 3 + rng.uniform(-math.pi / 6, math.pi / 6) for index in range(3)]
    return "polygon", [(centre_x + extent / 2 * math.cos(a), centre_y + extent / 2 * math.sin(a)) for a in angles]


def draw_picture(rng: random.Random, shape: str, colour: str) -> tuple[Image.Image, dict]:
    """The picture and how it was drawn: canvas size, the shape's extent as a share of it, anti-aliased or not, and
    the kind of background."""
    size = rng.choice((64, 64, 96, 128, 224))
    scale = SUPERSAMPLE if rng.random() < 0.5 else 1
    drawing = {"canvas": size, "antialiased": scale > 1, "background": rng.choice(("flat", "gradient", "speckled"))}
    image = background(rng, size, drawing["background"]).resize((size * scale, size * scale), Image.Resampling.NEAREST)
    drawing["extent"] = rng.uniform(0.1, 0.9)
    method, coordinates = shape_outline(rng, shape, size, drawing["extent"] * size)
    if method == "polygon":
        coordinates = [(x * scale, y * scale) for x, y in coordinates]
    else:
        coordinates = [value * scale for value in coordinates]
    getattr(ImageDraw.Draw(image), method)(coordinates, fill=COLOURS[colour])
    return (image.resize((size, size), Image.Resampling.LANCZOS) if scale > 1 else image), drawing


def questions_about(rng: random.Random, shape: str, colour: str) -> list[tuple[str, str, str]]:
    """(question, answer, question_type): one about the shape, one about the colour, two yes/no (one yes, one no)."""
    def presence(answer_yes: bool) -> tuple[str, str, str]:
        wording, yes_means_there = rng.choice(PRESENCE_QUESTIONS)
        thing_is_there = answer_yes == yes_means_there
        if rng.random() < 0.5:
            thing = colour if thing_is_there else rng.choice([c for c in COLOURS if c != colour])
            phrase = f"{thing} shape"
        else:
            phrase = shape if thing_is_there else rng.choice([s for s in SHAPES if s != shape])
        question = wording.format(thing=f"a {phrase}", thing_without_article=phrase)
        return question, "yes" if answer_yes else "no", "yes/no"

    return [
        (rng.choice(SHAPE_QUESTIONS).format(colour=colour), shape, "shape"),
        (rng.choice(COLOUR_QUESTIONS).format(shape=shape), colour, "colour"),
        presence(True), presence(False),
    ]


def write_test_set(output_dir: str, num_images: int, seed: int) -> int:
    """Draws `num_images` pictures (shapes and colours in turn, so each pair is equally common) into
    `output_dir/images` and their questions into `output_dir/test.json`; returns the number of questions."""
    rng = random.Random(seed)
    os.makedirs(os.path.join(output_dir, "images"), exist_ok=True)
    records = []
    for index in range(num_images):
        shape, colour = SHAPES[index % len(SHAPES)], list(COLOURS)[index // len(SHAPES) % len(COLOURS)]
        path = os.path.join("images", f"{index}.png")
        picture, drawing = draw_picture(rng, shape, colour)
        picture.save(os.path.join(output_dir, path))
        for number, (question, answer, kind) in enumerate(questions_about(rng, shape, colour)):
            records.append({"id": f"shapes-{index}-{number}", "image": path, "question_type": kind,
                            "drawing": drawing,
                            "conversations": [{"from": "human", "value": f"<image>\n{question}"},
                                              {"from": "gpt", "value": answer}]})
    with open(os.path.join(output_dir, "test.json"), "w") as handle:
        json.dump(records, handle, indent=0)
    return len(records)


def main() -> None:
    parser = ArgumentParser(__doc__)
    parser.add_argument("--output_dir", default="data/shapes_test")
    parser.add_argument("--num_images", type=at_least(1), default=480, help="pictures; 4 questions each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    count = write_test_set(args.output_dir, args.num_images, args.seed)
    print(f"{args.num_images} pictures, {count} questions in {args.output_dir}/test.json")


if __name__ == "__main__":
    main()
