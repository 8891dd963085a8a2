"""Evaluate a NextGPT on VQA records: greedy answers, VQA accuracy overall and per question type.

Records are LLaVA-format with one question and its answer (`conversations` = [human, gpt]), about images and, for a
model that takes them, audio and videos (`"audio"`, `"video"`, as in training); an optional `answers` list holds
several human answers, and an optional `question_type` groups the report. `--blank_media` gives the baseline of the
question alone: every image white, every audio file silent, every video black.

    python eval_vqa.py --model outputs/stage2/final --data data/easy_vqa/test.json --image_folder data/easy_vqa
    python eval_vqa.py --data benchmarks/shapes_test/test.json --image_folder benchmarks/shapes_test  # default model
"""

import json
import os
import sys
from collections import defaultdict

import evaluate
import torch
from PIL import Image
from tqdm.auto import tqdm

from audio_features import SAMPLE_RATE
from cli import LOAD_DTYPES, ArgumentParser, add_quantize_option, at_least
from training_data import FileChecks, load_records, record_images, record_media, record_to_messages
from video_features import CLIPS_PER_VIDEO, FRAMES_PER_CLIP, SIZE, video_clips

METRIC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics", "vqa_accuracy.py")


def vqa_items(records: list[dict], image_folder: str | None, processor) -> list[dict]:
    """One item per record: the question, its images, audio and videos (checked as training checks them), the
    reference answers, the question type."""
    items, checks = [], FileChecks()
    for index, record in enumerate(records):
        messages = record_to_messages(record)
        if [message["role"] for message in messages] != ["user", "assistant"]:
            raise ValueError(
                f"record {index} (id {record.get('id', index)}): an eval record is one question and its answer"
            )
        items.append({
            "question": messages[0]["content"], "images": record_images(record, image_folder, checks=checks),
            "audio": record_media(record, "audio", folder=image_folder, processor=processor, checks=checks),
            "videos": record_media(record, "video", folder=image_folder, processor=processor, checks=checks),
            "references": record.get("answers") or [messages[1]["content"]],
            "question_type": record.get("question_type", "all"),
        })
    return items


@torch.no_grad()
def answer_questions(
    model, processor, items: list[dict], batch_size: int = 16, fast: bool = False, **generate_kwargs
) -> list[str]:
    """Answers to `{"question", "images"}` items (with `"audio"` and `"videos"` where they have them), batched with
    left padding; greedy unless `generate_kwargs` sample. `fast` uses the fast generation path (model.fast_generate)
    instead of `generate`."""
    processor.tokenizer.padding_side = "left"
    generate = model.fast_generate if fast else model.generate
    answers = []
    for start in tqdm(range(0, len(items), batch_size), desc="Answering", unit="batch"):
        batch = items[start : start + batch_size]
        prompts = [processor.render([{"role": "user", "content": item["question"]}], add_generation_prompt=True)
                   for item in batch]
        media = {name: [file for item in batch for file in item.get(field, [])]
                 for name, field in (("audio", "audio"), ("videos", "videos"))}
        inputs = processor(text=prompts, images=[item["images"] for item in batch], padding=True, return_tensors="pt",
                           **{name: files for name, files in media.items() if files}).to(model.device)
        generated = generate(**inputs, **{"max_new_tokens": 16, "do_sample": False, **generate_kwargs})
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        answers += processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return [answer.strip() for answer in answers]


def blank_media() -> dict:
    """What stands in for each kind under `--blank_media`: a white image, 2 s of silence, a black video."""
    black = torch.zeros(SIZE, SIZE, 3, dtype=torch.uint8)
    return {"images": Image.new("RGB", (SIZE, SIZE), "white"), "audio": torch.zeros(1, 2 * SAMPLE_RATE),
            "videos": video_clips([black] * (CLIPS_PER_VIDEO * FRAMES_PER_CLIP))}


def evaluate_vqa(model, processor, records: list[dict], image_folder: str | None = None, batch_size: int = 16,
                 max_new_tokens: int = 16, blank: bool = False, fast: bool = False) -> tuple[dict, list[str]]:
    """{"accuracy": overall, "accuracy/<type>": ..., "count/<type>": ...} and the answers. `blank` swaps every image,
    audio file and video for a blank one (`blank_media`): what the model gets from the question alone. `fast`:
    answer through the fast generation path (the same greedy answers, sooner on a GPU)."""
    items = vqa_items(records, image_folder, processor)
    if blank:
        stand_ins = blank_media()
        items = [{**item, **{field: [stand_in] * len(item[field]) for field, stand_in in stand_ins.items()}}
                 for item in items]
    predictions = answer_questions(model, processor, items, batch_size, fast, max_new_tokens=max_new_tokens)
    metric = evaluate.load(METRIC_PATH)
    by_type = defaultdict(list)
    for item, prediction in zip(items, predictions):
        by_type[item["question_type"]].append((prediction, item["references"]))
    references = [item["references"] for item in items]
    results = {"accuracy": metric.compute(predictions=predictions, references=references)["accuracy"]}
    for question_type, pairs in sorted(by_type.items()):
        scores = metric.compute(predictions=[p for p, _ in pairs], references=[r for _, r in pairs])
        results[f"accuracy/{question_type}"], results[f"count/{question_type}"] = scores["accuracy"], len(pairs)
    return results, predictions


def main(argv: list[str] | None = None) -> int:
    from inference import MODEL_HELP, InputError, load

    parser = ArgumentParser(__doc__)
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument("--data", required=True, help="eval records (.json, .jsonl or dataset id)")
    parser.add_argument("--image_folder", default=None, help="folder the records' image paths are relative to")
    parser.add_argument("--batch_size", type=at_least(1), default=16)
    parser.add_argument("--max_new_tokens", type=at_least(1), default=16)
    parser.add_argument("--limit", type=at_least(1), default=None, help="evaluate only the first N records")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="auto", choices=list(LOAD_DTYPES))
    parser.add_argument("--blank_media", "--blank_images", dest="blank_media", action="store_true",
                        help="baseline: every image white, every audio file silent, every video black")
    add_quantize_option(parser)
    parser.add_argument("--output", default=None, help="write answers as JSONL here, and the scores beside it")
    parser.add_argument("--fast", action="store_true",
                        help="answer through the fast generation path (CUDA, Llama-family LLMs): same greedy answers")
    args = parser.parse_args(argv)
    try:
        records = load_records(args.data)[: args.limit]
        model, processor, _, fast = load(args)
        results, predictions = evaluate_vqa(
            model, processor, records, args.image_folder, args.batch_size, args.max_new_tokens, args.blank_media, fast,
        )
    except (InputError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for key, value in results.items():
        print(f"{key:32s} {value:.4f}" if key.startswith("accuracy") else f"{key:32s} {value}")
    if args.output:
        os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
        with open(args.output, "w") as handle:
            for record, prediction in zip(records, predictions):
                handle.write(json.dumps({"id": record.get("id"), "prediction": prediction}) + "\n")
        with open(os.path.splitext(args.output)[0] + "_scores.json", "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
