"""Training data: LLaVA conversations or caption pairs -> validated, tokenized examples -> packed or padded batches.

Records (JSON list, JSONL, or a `datasets` id):
- LLaVA: `{"id", "image": "a.jpg" | ["a.jpg", "b.jpg"] | absent, "audio": "a.wav" | [...] | absent,
  "video": "a.mp4" | [...] | absent, "conversations": [{"from": "human"|"gpt", "value"}]}` with one `<image>`
  placeholder per image, one `<audio>` per audio file (a model with an audio branch) and one `<video>` per video (a
  model with an ImageBind tower);
- captions (stage 1): `{"id", "image", "caption"}`, asked as `<image>\\n{caption_prompt}`; `{"id", "audio",
  "caption"}`, asked as `<audio>\\n{AUDIO_CAPTION_PROMPT}`; `{"id", "video", "caption"}`, asked as
  `<video>\\n{VIDEO_CAPTION_PROMPT}`.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image
from tqdm.auto import tqdm

from audio_features import load_audio
from cli import missing_local_folder
from fast_generation import round_up
from processing_nextgpt import IGNORE_INDEX, NextGPTProcessor
from video_features import load_video_frames

ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
DEFAULT_CAPTION_PROMPT = "Provide a caption for this image:"
AUDIO_CAPTION_PROMPT = "Provide a caption for this audio:"
VIDEO_CAPTION_PROMPT = "Provide a caption for this video:"
# Records' audio and video fields: the processor's placeholder, the loader that checks a file (naming what is wrong),
# and why a model without the placeholder cannot take them.
MEDIA = {
    "audio": ("audio_token", load_audio, "the model has no audio branch (assemble it with --audio_tower)"),
    "video": ("video_token", load_video_frames, "the model takes no video (its tower is not ImageBind's)"),
}


@dataclass
class BadRecord:
    source: str
    index: int
    record_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source} record {self.index} (id {self.record_id}): {self.reason}"


class BadRecordsError(ValueError):
    def __init__(self, bad_records: list[BadRecord]):
        self.bad_records = bad_records
        shown = "\n  ".join(str(bad) for bad in bad_records[:20])
        more = f"\n  ... and {len(bad_records) - 20} more" if len(bad_records) > 20 else ""
        super().__init__(
            f"{len(bad_records)} bad training records (fix them, or pass --skip_bad_records to skip them):"
            f"\n  {shown}{more}"
        )


def load_records(data_path: str, split: str = "train") -> list[dict]:
    """A local .json (list of records) or .jsonl file, or a dataset id / folder loaded through `datasets`."""
    if missing_local_folder(data_path) or (data_path.endswith((".json", ".jsonl")) and not os.path.exists(data_path)):
        raise ValueError(f"{data_path}: no such file or folder")  # rather than the hub's error for a dataset id
    if os.path.isfile(data_path):
        with open(data_path, encoding="utf-8") as handle:
            if data_path.endswith(".jsonl"):
                records = []
                for line_number, line in enumerate(handle, 1):
                    if line.strip():
                        try:
                            records.append(json.loads(line))
                        except json.JSONDecodeError as error:
                            raise ValueError(f"{data_path} line {line_number}: not valid JSON ({error})") from None
                return records
            try:
                records = json.load(handle)
            except json.JSONDecodeError as error:
                raise ValueError(f"{data_path}: not valid JSON ({error})") from None
        if not isinstance(records, list):
            raise ValueError(f"{data_path}: expected a JSON list of records, got {type(records).__name__}")
        return records
    from datasets import load_dataset

    return list(load_dataset(data_path, split=split))


def record_to_messages(record: dict, caption_prompt: str = DEFAULT_CAPTION_PROMPT) -> list[dict]:
    """A LLaVA or caption record -> chat messages; ValueError on anything malformed."""
    if not isinstance(record, dict):
        raise ValueError(f"a record must be a JSON object, got {type(record).__name__}")
    if "conversations" in record:
        turns = record["conversations"]
        if not isinstance(turns, list) or not turns:
            raise ValueError("'conversations' must be a non-empty list")
        messages = []
        for number, turn in enumerate(turns):
            if not isinstance(turn, dict) or turn.get("from") not in ROLES or not isinstance(turn.get("value"), str):
                raise ValueError(f"turn {number} must be {{'from': 'human'|'gpt', 'value': str}}, got {turn!r}")
            if not turn["value"].strip():
                raise ValueError(f"turn {number} is empty")
            messages.append({"role": ROLES[turn["from"]], "content": turn["value"]})
        dialogue = messages[1:] if messages[0]["role"] == "system" else messages
        for number, message in enumerate(dialogue):
            expected = "user" if number % 2 == 0 else "assistant"
            if message["role"] != expected:
                raise ValueError(
                    f"roles must alternate human/gpt starting with human; turn {number} is {message['role']}"
                )
        return messages
    if "caption" in record:
        if not isinstance(record["caption"], str) or not record["caption"].strip():
            raise ValueError("the caption is empty")
        if "image" in record:
            question = f"<image>\n{caption_prompt}"
        elif "audio" in record:
            question = f"<audio>\n{AUDIO_CAPTION_PROMPT}"
        elif "video" in record:
            question = f"<video>\n{VIDEO_CAPTION_PROMPT}"
        else:
            raise ValueError("a caption record needs an 'image' (or an 'audio', a 'video')")
        return [{"role": "user", "content": question}, {"role": "assistant", "content": record["caption"]}]
    raise ValueError("a record needs 'conversations' (LLaVA format) or 'caption' (caption pairs)")


def check_image_file(path: str) -> str:
    """The path, once the file is known to exist and decode; ValueError naming the path otherwise."""
    if not os.path.isfile(path):
        raise ValueError(f"image not found: {path}")
    try:
        with Image.open(path) as opened:
            opened.load()
    except Exception as error:
        raise ValueError(f"image {path} does not decode: {error}") from None
    return path


class FileChecks:
    """Checks each file once however many records name it (LLaVA-style data asks several questions about one image,
    and decoding a video or an hour of audio takes seconds): the outcome, or its error, is remembered by path."""

    def __init__(self):
        self.errors: dict[str, str | None] = {}

    def __call__(self, path: str, check: Callable[[str], object]) -> str:
        """The path, once `check(path)` has passed (now or before); its ValueError otherwise, again each time."""
        if path not in self.errors:
            try:
                check(path)
                self.errors[path] = None
            except ValueError as error:
                self.errors[path] = str(error)
        if self.errors[path] is not None:
            raise ValueError(self.errors[path])
        return path


def listed(record: dict, key: str) -> list:
    """A record's one-or-many field as a list (absent: empty)."""
    values = record.get(key)
    return [] if values is None else values if isinstance(values, list) else [values]


def resolved_path(path: str, folder: str | None) -> str:
    return os.path.join(folder, path) if folder and not os.path.isabs(path) else path


def record_images(record: dict, image_folder: str | None, *, checks: FileChecks | None = None) -> list:
    """Image paths resolved against `image_folder` (PIL images from `datasets` pass through); checked to decode
    (once per path across the calls that share `checks`)."""
    checks = checks or FileChecks()
    resolved = []
    for image in listed(record, "image"):
        if isinstance(image, str):
            resolved.append(checks(resolved_path(image, image_folder), check_image_file))
        elif isinstance(image, Image.Image):
            resolved.append(image)
        else:
            raise ValueError(f"'image' must be a path or a list of paths, got {type(image).__name__}")
    return resolved


def record_media(record: dict, key: str, *, folder: str | None, processor: NextGPTProcessor,
                 checks: FileChecks | None = None) -> list[str]:
    """The record's audio (`key` "audio") or video ("video") paths resolved against `folder`, each checked to decode
    (the loaders name what is wrong: missing, not audio/video, truncated, empty, silent, too long), once per path
    across the calls that share `checks`."""
    checks = checks or FileChecks()
    token_attribute, load, missing = MEDIA[key]
    items = listed(record, key)
    if items and not getattr(processor, token_attribute):
        raise ValueError(f"the record has '{key}' but {missing}")
    paths = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"'{key}' must be a path or a list of paths, got {type(item).__name__}")
        paths.append(checks(resolved_path(item, folder), load))
    return paths


def prepare_examples(
    records: list[dict],
    source: str,
    processor: NextGPTProcessor,
    image_folder: str | None = None,
    max_length: int | None = None,
    caption_prompt: str = DEFAULT_CAPTION_PROMPT,
    skip_bad_records: bool = False,
) -> tuple[list[dict], list[BadRecord]]:
    """Validate and tokenize every record. Any bad record stops the run (BadRecordsError lists them all) unless
    `skip_bad_records`, in which case they are returned for reporting. Nothing is dropped silently."""
    examples, bad, checks = [], [], FileChecks()
    for index, record in enumerate(tqdm(records, desc=f"Checking {os.path.basename(source)}", unit="record")):
        record_id = str(record.get("id", index)) if isinstance(record, dict) else str(index)
        try:
            messages = record_to_messages(record, caption_prompt)
            images = record_images(record, image_folder, checks=checks)
            audio = record_media(record, "audio", folder=image_folder, processor=processor, checks=checks)
            videos = record_media(record, "video", folder=image_folder, processor=processor, checks=checks)
            example = processor.tokenize_conversation(messages, len(images), max_length, num_audio=len(audio),
                                                      num_videos=len(videos))
        except ValueError as error:
            bad.append(BadRecord(source, index, record_id, str(error)))
            continue
        examples.append({"id": record_id, "images": images, "audio": audio, "videos": videos,
                         "input_ids": example["input_ids"], "labels": example["labels"]})
    if bad and not skip_bad_records:
        raise BadRecordsError(bad)
    return examples, bad


# How each kind of file reaches the model: the examples' field, the model input from files (and the processor method
# that makes it), the model input from the embedding cache.
COLLATED_MEDIA = (
    ("image", "images", "pixel_values", "preprocess_images", "image_embeds"),
    ("video", "videos", "pixel_values_videos", "preprocess_videos", "video_embeds"),
    ("audio", "audio", "input_features", "preprocess_audio", "audio_embeds"),
)


class NextGPTCollator:
    """Batches tokenized examples and adds their images, videos and audio in reading order: their features from the
    embedding cache where it holds their kind, else the processor's inputs (`pixel_values`, `pixel_values_videos`,
    `input_features`).

    `pack=True` (training's default) puts the micro-batch into one row without padding: `position_ids` restart at 0
    for each example and `cu_seq_lens_q`/`max_length_q` mark the examples for `packed_attention`, which keeps them
    apart; the first label of every example is -100, so no example learns to predict the next one's first token.
    `pad_to_multiple_of` pads a packed row at its end with one more example of padding tokens (all labels -100), to
    the next multiple: graphed decoder layers run that length anyway, and the eager work around them (the fused
    cross-entropy's matrix products) meets a few shapes instead of a new one almost every micro-batch, each of which
    held the host 4-5 ms inside the product's launch (H200s; gone once the shapes repeat).
    `pack=False` pads on the right (labels -100 there, so padding is never in the loss)."""

    def __init__(self, processor: NextGPTProcessor, embedding_cache=None, pack: bool = False,
                 pad_to_multiple_of: int | None = None):
        self.processor = processor
        self.embedding_cache = embedding_cache
        self.pack = pack
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.packed(examples) if self.pack else self.padded(examples)
        for kind, field, name, preprocess, cached_name in COLLATED_MEDIA:
            files = [item for example in examples for item in example.get(field, [])]
            if not files:
                continue
            if self.embedding_cache is not None and self.embedding_cache.holds(kind):
                batch[cached_name] = self.embedding_cache.lookup(files, kind)
            else:
                batch[name] = getattr(self.processor, preprocess)(files)
        return batch

    def padded(self, examples: list[dict]) -> dict:
        width = max(len(example["input_ids"]) for example in examples)
        pad_id = self.processor.tokenizer.pad_token_id
        return {
            "input_ids": torch.tensor([ex["input_ids"] + [pad_id] * (width - len(ex["input_ids"])) for ex in examples]),
            "attention_mask": torch.tensor(
                [[1] * len(ex["input_ids"]) + [0] * (width - len(ex["input_ids"])) for ex in examples]
            ),
            "labels": torch.tensor([ex["labels"] + [IGNORE_INDEX] * (width - len(ex["labels"])) for ex in examples]),
        }

    def packed(self, examples: list[dict]) -> dict:
        lengths = [len(example["input_ids"]) for example in examples]
        padding = round_up(sum(lengths), self.pad_to_multiple_of or 1) - sum(lengths)
        if padding:
            examples = [*examples, {"input_ids": [self.processor.tokenizer.pad_token_id] * padding,
                                    "labels": [IGNORE_INDEX] * padding}]
            lengths.append(padding)
        return {
            "input_ids": torch.tensor([[token for example in examples for token in example["input_ids"]]]),
            "labels": torch.tensor([[label for ex in examples for label in [IGNORE_INDEX] + ex["labels"][1:]]]),
            "position_ids": torch.tensor([[position for length in lengths for position in range(length)]]),
            "cu_seq_lens_q": torch.tensor([0] + lengths, dtype=torch.int32).cumsum(0, dtype=torch.int32),
            "max_length_q": max(lengths),
        }
