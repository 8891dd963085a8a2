"""Ask a NextGPT about an image (and audio or video, for a model that takes them). Without --model, uses the default
offline model (assembled once, then cached).

    python inference.py --image examples/red_triangle.png "What shape is in the image?"
    python inference.py --model nextgpt --image photo.jpg --audio bark.wav "Which animal makes this sound?"
    python inference.py --model nextgpt --video clip.mp4 "What happens in the video?"   # an ImageBind tower
    python inference.py --image photo.jpg --chat                      # multi-turn, answers streamed
    python inference.py --batch questions.jsonl --output answers.jsonl  # {"image", "question"} per line
    python inference.py --model outputs/stage2/final --image photo.jpg "Describe the image."
    python inference.py --model spoken-shapes --audio examples/spoken_blue.wav "What colour do you hear?"
"""

import argparse
import json
import os
import sys
from typing import NamedTuple

import torch

from audio_features import load_audio
from cli import LOAD_DTYPES, ArgumentParser, add_quantize_option, at_least, missing_local_folder
from training_data import check_image_file
from video_features import load_video_frames

MODEL_HELP = ("a NextGPT folder or hub id, or a shipped model's name: easy-vqa (the default: offline SmolLM2 + "
              "EfficientNet-Lite0, easy-VQA), spoken-shapes (the same, hearing too)")


class InputError(Exception):
    """Bad input from the user: reported as one line, never as a traceback."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(__doc__)
    parser.add_argument("question", nargs="?", help="the question (omit with --chat or --batch)")
    parser.add_argument("--image", help="image file to ask about")
    parser.add_argument("--audio", action="append", default=[],
                        help="audio file to ask about (repeat for several; a model with an audio branch)")
    parser.add_argument("--video", action="append", default=[],
                        help="video file to ask about (repeat for several; a model with an ImageBind tower)")
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument("--chat", action="store_true", help="multi-turn conversation in the terminal")
    parser.add_argument("--batch", metavar="JSONL", help='answer every {"image", "question"} line of this file')
    parser.add_argument("--output", help="with --batch: where to write the answers (default: stdout)")
    parser.add_argument("--max-new-tokens", type=at_least(1), default=128)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 means greedy")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="auto", choices=list(LOAD_DTYPES))
    parser.add_argument("--batch-size", type=at_least(1), default=8, help="with --batch: questions per generate call")
    add_quantize_option(parser)
    parser.add_argument("--fast", action=argparse.BooleanOptionalAction, default=None,
                        help="fast generation path (fast_generation.py: own KV cache, Triton kernels, CUDA graphs); "
                             "default: on with CUDA when the language model is Llama-family")
    args = parser.parse_args(argv)
    modes = sum([bool(args.chat), bool(args.batch), args.question is not None])
    if modes != 1:
        parser.error("give a question, or --chat, or --batch")
    if (args.chat or args.question is not None) and not (args.image or args.audio or args.video):
        parser.error("--image (or --audio, --video) is required with a question or --chat")
    if args.batch and (args.audio or args.video):
        parser.error("--audio and --video go with a question or --chat, not --batch")
    return args


class Loaded(NamedTuple):
    model: torch.nn.Module
    processor: object
    source: str  # the folder or hub id it came from
    fast: bool  # whether to generate through the fast path


def load(args: argparse.Namespace) -> Loaded:
    """The model of --model (default: the offline default model) on --device, and whether --fast (default: where
    it runs, on CUDA) applies."""
    from transformers import AutoModel, AutoProcessor

    from default_model import DEFAULT_MODEL, SHIPPED_MODELS, shipped_model_folder
    from fast_generation import FastGenerator

    source = args.model
    if source is None or source in SHIPPED_MODELS:
        source = shipped_model_folder(source or DEFAULT_MODEL)
    elif not os.path.isdir(source) and os.path.exists(source):
        raise InputError(f"--model {source} is not a folder")
    elif missing_local_folder(source):
        raise InputError(f"--model {source}: no such folder")
    try:
        model = AutoModel.from_pretrained(source, trust_remote_code=True, dtype=LOAD_DTYPES[args.dtype])
        processor = AutoProcessor.from_pretrained(source, trust_remote_code=True)
    except (OSError, ValueError) as error:  # not found, not a hub id, unreachable hub
        raise InputError(f"cannot load model {source}: {str(error).splitlines()[0]}") from None
    from weight_quantization import quantize_named

    try:
        model = quantize_named(model, getattr(args, "quantize", None))
    except ValueError as error:  # e.g. int4 groups that do not tile the LLM's widths
        raise InputError(f"--quantize {args.quantize}: {error}") from None
    fast = args.fast
    if fast is None:
        on_cuda, refusal = args.device.startswith("cuda"), FastGenerator.refusal_note(model)
        if on_cuda and refusal:  # say what would make it fast (e.g. NF4: --quantize int4)
            print(f"note: {refusal}", file=sys.stderr)
        fast = on_cuda and refusal is None
    return Loaded(model.to(args.device).eval(), processor, source, fast)


def generation_kwargs(args: argparse.Namespace) -> dict:
    sampled = args.temperature > 0
    return dict(max_new_tokens=args.max_new_tokens, do_sample=sampled,
                **({"temperature": args.temperature, "top_p": args.top_p} if sampled else {}))


def question_with_media(processor, question: str, args: argparse.Namespace) -> str:
    """The question with the placeholders of --image, each --video and each --audio."""
    return processor.question_with_placeholders(question, num_images=int(bool(args.image)), num_audio=len(args.audio),
                                                num_videos=len(args.video))


@torch.no_grad()
def answer(model, processor, messages: list[dict], args, streamer=None) -> str:
    """The reply to the conversation so far, about `args.image`, `args.video` and `args.audio`."""
    prompt = processor.render(messages, add_generation_prompt=True)
    media = {"images": [args.image] if args.image else None, **({"audio": args.audio} if args.audio else {}),
             **({"videos": args.video} if args.video else {})}
    inputs = processor(text=prompt, **media, return_tensors="pt").to(model.device)
    prompt_length = inputs["input_ids"].shape[1]
    try:
        model.config.check_fits(prompt_length, args.max_new_tokens)
    except ValueError as error:
        raise InputError(f"{error} (--max-new-tokens)") from None
    generate = model.fast_generate if args.fast else model.generate
    generated = generate(**inputs, **generation_kwargs(args), streamer=streamer)
    return processor.tokenizer.decode(generated[0, prompt_length:], skip_special_tokens=True).strip()


def chat(model, processor, args) -> None:
    from transformers import TextStreamer

    streamer = TextStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
    messages = []
    print(f"Chatting about {', '.join(filter(None, [args.image, *args.video, *args.audio]))}. Empty line or Ctrl-D "
          "to quit.")
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            break
        if not question:
            break
        content = question_with_media(processor, question, args) if not messages else question
        messages.append({"role": "user", "content": content})
        print("nextgpt> ", end="", flush=True)
        messages.append({"role": "assistant", "content": answer(model, processor, messages, args, streamer)})


def read_batch(path: str) -> list[dict]:
    """Check the whole batch file (JSON lines, images readable) before any model is loaded."""
    if not os.path.isfile(path):
        raise InputError(f"batch file not found: {path}")
    items = []
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{path} line {number}: not valid JSON ({error})") from None
            if not isinstance(record, dict) or not isinstance(record.get("question"), str) or not isinstance(
                record.get("image"), str
            ):
                raise InputError(f'{path} line {number}: expected {{"image": path, "question": text}}')
            check_image_file(record["image"])
            items.append(record)
    return items


def batch(model, processor, items: list[dict], args) -> None:
    from eval_vqa import answer_questions

    questions = [{"question": f"{processor.image_token}\n{item['question']}", "images": [item["image"]]}
                 for item in items]
    answers = answer_questions(model, processor, questions, args.batch_size, args.fast, **generation_kwargs(args))
    output = open(args.output, "w") if args.output else sys.stdout
    for item, reply in zip(items, answers):
        output.write(json.dumps({"image": item["image"], "question": item["question"], "answer": reply}) + "\n")
    if args.output:
        output.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.image:
            check_image_file(args.image)
        for path in args.audio:
            load_audio(path)
        for path in args.video:
            load_video_frames(path)
        items = read_batch(args.batch) if args.batch else None
        model, processor, _, fast = load(args)
        args = argparse.Namespace(**{**vars(args), "fast": fast})
        if args.chat:
            chat(model, processor, args)
        elif args.batch:
            batch(model, processor, items, args)
        else:
            question = question_with_media(processor, args.question, args)
            print(answer(model, processor, [{"role": "user", "content": question}], args))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:  # e.g. placeholder/image mismatches found by the processor or the model
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
