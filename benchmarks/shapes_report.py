"""Where a model's answers on `draw_shapes.py` pictures go wrong: accuracy per question type broken down by how the
picture was drawn (canvas size, shape extent, anti-aliasing, background), and the colour confusions.

    python eval_vqa.py --model MODEL --data benchmarks/shapes_test/test.json --image_folder benchmarks/shapes_test \\
        --output results/answers.jsonl
    python benchmarks/shapes_report.py --data benchmarks/shapes_test/test.json --answers results/answers.jsonl
"""

import argparse
import json
from collections import Counter, defaultdict


def extent_bucket(extent: float) -> str:
    low = min(int(extent * 5) / 5, 0.8)
    return f"{low:.1f}-{low + 0.2:.1f}"


def report(records: list[dict], predictions: dict[str, str]) -> str:
    groups = defaultdict(lambda: [0, 0])
    confusions = Counter()
    for record in records:
        answer = record["conversations"][1]["value"]
        prediction = predictions[record["id"]].strip().lower()
        drawing, kind = record["drawing"], record["question_type"]
        for facet, value in (("all", ""), ("canvas", drawing["canvas"]), ("extent", extent_bucket(drawing["extent"])),
                             ("antialiased", drawing["antialiased"]), ("background", drawing["background"])):
            groups[kind, facet, value][0] += prediction == answer
            groups[kind, facet, value][1] += 1
        if kind == "colour" and prediction != answer:
            confusions[answer, prediction] += 1
    lines = ["| question type | facet | value | accuracy | questions |", "|---|---|---|---|---|"]
    for (kind, facet, value), (right, total) in sorted(groups.items(), key=lambda item: tuple(map(str, item[0]))):
        lines.append(f"| {kind} | {facet} | {value} | {100 * right / total:.1f}% | {total} |")
    lines.append("\ncolour confusions (true -> answered: count): " + ", ".join(
        f"{true} -> {answered}: {count}" for (true, answered), count in confusions.most_common()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="benchmarks/shapes_test/test.json")
    parser.add_argument("--answers", required=True, help="eval_vqa.py --output file (JSONL of id, prediction)")
    args = parser.parse_args()
    records = json.load(open(args.data))
    with open(args.answers) as handle:
        predictions = {row["id"]: row["prediction"] for row in map(json.loads, handle)}
    print(report(records, predictions))


if __name__ == "__main__":
    main()
