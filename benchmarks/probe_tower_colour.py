"""Does the frozen tower see colour beyond easy-VQA's renderings? A linear probe on EfficientNet-Lite0's features.

The default model's colour answers fail on pictures drawn differently from easy-VQA's (`benchmarks/EASY_VQA.md`). This
asks where: it fits a linear classifier of colour (8) and shape (3) on the frozen tower's 49 patch tokens (mean- and
max-pooled) of easy-VQA training pictures, alone or with their re-renderings (`convert_easy_vqa.rerender`, what
`--augment` trains on), and tests it on easy-VQA's test pictures and on `draw_shapes.py`'s. If the probe trained on
easy-VQA alone fails on the drawn pictures while the one trained with re-renderings does not, the tower's features hold
the colour and the narrow training pictures are what the model lacks; `--layer` reads earlier features instead, to
see how much colour the tower's depth loses, and `stem_cells`/`stem_cells_max` the stem's channels per token as the
`efficientnet-lite0-stem`/`-stem-max` towers give them (averaged over each cell, or averaged and max-pooled). CPU, a
few minutes:

    python benchmarks/probe_tower_colour.py --num_train 1000 --layer head
"""

import argparse
import json
import os
import random
import sys

import torch
from PIL import Image
from tqdm.auto import tqdm

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from assemble_nextgpt import EFFICIENTNET_LITE0_TOWERS  # noqa: E402
from convert_easy_vqa import image_facts, rerender, shape_mask  # noqa: E402
from draw_shapes import COLOURS, SHAPES  # noqa: E402
from efficientnet_lite import EfficientNetLiteModel, efficientnet_lite_image_processor  # noqa: E402


# Where the features are read: the tokens the model gets (the head's 1280 channels at 7x7), the last block's 320
# channels (7x7, before the head), or the stem's 32 (112x112, after the first convolution).
LAYERS = {"head": None, "last_block": lambda tower: tower._blocks[-1], "stem": lambda tower: tower._bn0}
# Or the stem's channels as a tower appends them to each 7x7 token: averaged over its cell (efficientnet-lite0-stem),
# or averaged and max-pooled (efficientnet-lite0-stem-max).
CELL_LAYERS = {"stem_cells": "efficientnet-lite0-stem", "stem_cells_max": "efficientnet-lite0-stem-max"}


@torch.no_grad()
def pooled_features(tower, processor, pictures: list[Image.Image], layer: str = "head",
                    batch_size: int = 64) -> torch.Tensor:
    """(N, 2 x channels): the mean and the maximum over positions of the layer's output for each picture."""
    captured = {}
    hook = LAYERS.get(layer) and LAYERS[layer](tower).register_forward_hook(
        lambda module, inputs, output: captured.update(output=output))
    rows = []
    for start in tqdm(range(0, len(pictures), batch_size), desc="Tower", unit="batch"):
        pixels = processor([p.convert("RGB") for p in pictures[start:start + batch_size]],
                           return_tensors="pt")["pixel_values"]
        tokens = tower(pixel_values=pixels).last_hidden_state
        if hook:
            tokens = captured["output"].flatten(2).transpose(1, 2)
        if layer in CELL_LAYERS:
            tokens = tokens[..., tower.config.hidden_size:]
        rows.append(torch.cat([tokens.mean(1), tokens.amax(1)], dim=-1))
    if hook:
        hook.remove()
    return torch.cat(rows)


def fit_probe(features: torch.Tensor, labels: torch.Tensor, classes: int, steps: int = 300) -> torch.nn.Module:
    """Softmax regression on standardised features (L-BFGS, a little weight decay)."""
    torch.manual_seed(0)
    mean, std = features.mean(0), features.std(0) + 1e-6
    linear = torch.nn.Linear(features.shape[1], classes)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear((features - mean) / std), labels)
        loss = loss + 1e-3 * linear.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return lambda x: linear((x - mean) / std)


def easy_vqa_pictures(split: str, count: int) -> list[tuple[Image.Image, str, str]]:
    """(picture, colour, shape) of the first `count` pictures of an easy-VQA split whose questions give both."""
    import easy_vqa

    questions, answers, image_ids = getattr(easy_vqa, f"get_{split}_questions")()
    paths = getattr(easy_vqa, f"get_{split}_image_paths")()
    per_image = {}
    for question, answer, image_id in zip(questions, answers, image_ids):
        per_image.setdefault(image_id, ([], []))
        per_image[image_id][0].append(question)
        per_image[image_id][1].append(answer)
    found = []
    for image_id in sorted(per_image):
        facts = image_facts(*per_image[image_id])
        if {"colour", "shape"} <= facts.keys():
            found.append((Image.open(paths[image_id]), facts["colour"], facts["shape"]))
        if len(found) == count:
            break
    return found


def drawn_pictures(folder: str) -> list[tuple[Image.Image, str, str]]:
    """(picture, colour, shape) of a `draw_shapes.py` set, from its colour and shape questions."""
    records = json.load(open(os.path.join(folder, "test.json")))
    facts = {}
    for record in records:
        if record["question_type"] in ("colour", "shape"):
            facts.setdefault(record["image"], {})[record["question_type"]] = record["conversations"][1]["value"]
    return [(Image.open(os.path.join(folder, image)), fact["colour"], fact["shape"]) for image, fact in facts.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_train", type=int, default=1000, help="easy-VQA training pictures")
    parser.add_argument("--num_test", type=int, default=500, help="easy-VQA test pictures")
    parser.add_argument("--drawn", default=os.path.join(REPO_ROOT, "benchmarks", "shapes_test"))
    parser.add_argument("--layer", default="head", choices=[*LAYERS, *CELL_LAYERS],
                        help="where the tower's features are read")
    parser.add_argument("--output", default=None, help="write the accuracies here as JSON")
    args = parser.parse_args()

    tower_options = EFFICIENTNET_LITE0_TOWERS[CELL_LAYERS.get(args.layer, "efficientnet-lite0")]
    tower, processor = EfficientNetLiteModel.from_packaged_weights(**tower_options), efficientnet_lite_image_processor()
    rng = random.Random(0)
    train = easy_vqa_pictures("train", args.num_train)
    sets = {"easy-VQA train": train,
            "easy-VQA train, re-rendered": [(rerender(shape_mask(p), c, rng), c, s) for p, c, s in train],
            "easy-VQA test": easy_vqa_pictures("test", args.num_test),
            "drawn (draw_shapes.py)": drawn_pictures(args.drawn)}
    colour_ids, shape_ids = {c: i for i, c in enumerate(COLOURS)}, {s: i for i, s in enumerate(SHAPES)}
    data = {name: (pooled_features(tower, processor, [p for p, _, _ in items], args.layer),
                   torch.tensor([colour_ids[c] for _, c, _ in items]),
                   torch.tensor([shape_ids[s] for _, _, s in items]))
            for name, items in sets.items()}
    results = {}
    for training in (["easy-VQA train"], ["easy-VQA train", "easy-VQA train, re-rendered"]):
        features = torch.cat([data[name][0] for name in training])
        for task, column, classes in (("colour", 1, len(COLOURS)), ("shape", 2, len(SHAPES))):
            probe = fit_probe(features, torch.cat([data[name][column] for name in training]), classes)
            for tested in ("easy-VQA test", "drawn (draw_shapes.py)"):
                accuracy = (probe(data[tested][0]).argmax(1) == data[tested][column]).float().mean().item()
                results[f"{task} | trained on {' + '.join(training)} | tested on {tested}"] = accuracy
    for key, accuracy in results.items():
        print(f"| {key} | {100 * accuracy:.1f}% |")
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
