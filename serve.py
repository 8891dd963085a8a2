"""An OpenAI-compatible HTTP server for a NextGPT model (standard library only).

    python serve.py                                   # the default offline model on 127.0.0.1:8000
    python serve.py --model outputs/stage2/final --port 8080 --image-root /data/images

    curl localhost:8000/v1/chat/completions -H 'Content-Type: application/json' -d '{"messages": [{"role": "user",
      "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}},
                  {"type": "text", "text": "What shape is in the image?"}]}], "max_tokens": 32}'

Endpoints: POST /v1/chat/completions (images as data: URLs, or as files under --image-root; for a model with an audio
branch, audio as OpenAI's `input_audio` parts, base64 WAV/FLAC/OGG/MP3; for a model with an ImageBind tower, videos
as `video_url` parts, data: URLs or files under --image-root; "stream": true for server-sent events),
GET /v1/models, GET /openapi.json (the API's OpenAPI 3.1 description), GET /metrics (Prometheus: requests, tokens,
prefills, decode steps and where the generation thread's time goes), GET /health, and a chat page at /
(chat_page.html). On CUDA, answers come from the fast generation path with continuous batching
(continuous_batching.py: a request joins the running batch at the next decode step and leaves when it ends); other
models batch requests that arrive together (generation_queue.py).
Text is streamed as it is generated, detokenized on the request's own thread. Every bad request gets an OpenAI-style
error naming the field. What a request may cost is checked before the work (`Limits`: body size, images and their
pixels read from the header, text length, requests waiting: 503 with Retry-After); idle and slow connections time
out; a request whose client leaves is dropped if still waiting, and stopped at its next token if generating;
`--api-key` (or NEXTGPT_API_KEY) requires `Authorization: Bearer KEY` on every endpoint but /health.
"""

import argparse
import base64
import binascii
import hmac
import io
import ipaddress
import json
import os
import select
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
from PIL import Image, UnidentifiedImageError

from audio_features import load_audio
from cli import LOAD_DTYPES, ArgumentParser, add_quantize_option, at_least
from continuous_batching import CPU_CACHE_BYTES, PREFILL_WINDOW_S, ContinuousBatcher
from generation_queue import GenerationCancelled, GenerationQueue, Job, Metric, QueueFull
from processing_nextgpt import PLACEHOLDER_ORDER
from video_features import video_features

DEFAULT_MAX_TOKENS = 256
CHAT_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chat_page.html")
API_KEY_VARIABLE = "NEXTGPT_API_KEY"
ROLES = ("system", "user", "assistant")  # a message's roles: checked in to_chat, listed in /openapi.json
# How often a streamed answer sends at most (--stream-interval-ms): under load every wake-up of a request thread takes
# the GIL from the generation thread. 40 ms gave 64 clients 26% more tokens/s on an H100 (32% on the CPU) with the
# same first-token times (benchmarks/RESULTS.md, "Serving under load").
STREAM_INTERVAL_S = 0.04


@dataclass(frozen=True)
class Limits:
    """What one request may cost, each checked before the work it would cause."""

    max_body_bytes: int = 32 * 2**20
    max_images: int = 8  # per request
    max_audio: int = 4  # audio parts per request
    max_audio_seconds: float = 60.0  # one audio part's length, read from its header before decoding
    max_videos: int = 2  # video parts per request
    max_video_seconds: float = 600.0  # one video's length, read from its headers before decoding
    max_image_pixels: int = 4096 * 4096  # read from the image's header, before decoding (PIL's own bomb limit: 89 M)
    max_text_chars: int = 100_000  # all text parts together, before tokenizing
    max_waiting: int = 64  # requests waiting for the generation thread; more are answered 503 with Retry-After
    timeout_s: float = 60.0  # a connection idle, or a body arriving slower, this long is closed


class RequestError(Exception):
    """A bad request: sent back as an OpenAI-style error with this status."""

    def __init__(self, message: str, param: str | None = None, status: HTTPStatus = HTTPStatus.BAD_REQUEST,
                 code: str | None = None):
        super().__init__(message)
        self.param, self.status, self.code = param, status, code


def url_source(url: str, where: str, *, image_root: str | None, kind: str) -> bytes | str:
    """The bytes of a base64 data: URL, or the real path of a file named under `image_root` (never outside it)."""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.endswith(";base64"):
            raise RequestError(f"{kind} data URLs must be base64 (data:{kind}/...;base64,...)", where)
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(f"the {kind} data URL is not valid base64", where) from None
    if url.startswith(("http://", "https://")):
        raise RequestError(f"remote {kind} URLs are not fetched by this server; send the {kind} as a data: URL", where)
    if image_root is None:
        raise RequestError(f"{kind} file paths are refused (start the server with --image-root to allow them)", where)
    if "\0" in url:
        raise RequestError(f"{kind} paths cannot contain NUL characters", where)
    root = os.path.realpath(image_root)
    path = os.path.realpath(os.path.join(root, url.removeprefix("file://")))
    if os.path.commonpath([root, path]) != root:
        raise RequestError(f"{kind} path {url!r} lies outside --image-root", where)
    if not os.path.isfile(path):
        raise RequestError(f"{kind} file {url!r} not found under --image-root", where)
    return path


def decode_image(url: str, where: str, *, image_root: str | None, max_pixels: int) -> Image.Image:
    """A PIL image from a data: URL, or from a file path under `image_root`; its size is checked from the header,
    before anything is decoded."""
    source = url_source(url, where, image_root=image_root, kind="image")
    source = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with Image.open(source) as image:
            if image.width * image.height > max_pixels:
                raise RequestError(f"the image is {image.width} x {image.height} pixels, over this server's limit of "
                                   f"{max_pixels} pixels", where)
            image.load()
            return image.convert("RGB")
    except UnidentifiedImageError:
        raise RequestError("not a readable image: no image format recognised", where) from None
    except (OSError, Image.DecompressionBombError) as error:  # truncated, damaged, or absurdly large
        raise RequestError(f"not a readable image ({error})", where) from None


def decode_video(url: str, where: str, *, image_root: str | None, max_seconds: float) -> torch.Tensor:
    """A video's clips for the tower (`video_features`) from a data: URL or a file path under `image_root`; its length
    is checked from its headers before decoding, and what is wrong with it is named."""
    source = url_source(url, where, image_root=image_root, kind="video")
    with tempfile.NamedTemporaryFile(suffix=".video") as file:
        if isinstance(source, bytes):
            file.write(source)
            file.flush()
        path = file.name if isinstance(source, bytes) else source
        try:
            return video_features(path, max_seconds=max_seconds)
        except ValueError as error:  # says "video PATH ...": the client knows it by its field
            raise RequestError(f"not a usable video: {str(error).replace(path, 'video_url', 1)}", where) from None


def decode_audio(input_audio, where: str, max_seconds: float) -> torch.Tensor:
    """A (channels, samples) 16 kHz waveform from OpenAI's `input_audio` ({"data": base64, "format": "wav"|...});
    `load_audio` reads it (from a temporary file) and names what is wrong with it."""
    data = input_audio.get("data") if isinstance(input_audio, dict) else None
    audio_format = input_audio.get("format", "wav") if isinstance(input_audio, dict) else None
    if not isinstance(data, str) or not isinstance(audio_format, str) or not audio_format.isalnum():
        raise RequestError("input_audio needs {'data': base64 string, 'format': 'wav', 'mp3', ...}", where)
    try:
        payload = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("input_audio.data is not valid base64", where) from None
    with tempfile.NamedTemporaryFile(suffix=f".{audio_format}") as file:
        file.write(payload)
        file.flush()
        try:
            return load_audio(file.name, max_seconds=max_seconds)
        except ValueError as error:  # says "audio /tmp/...: what is wrong"; the client knows it by its field
            raise RequestError(f"not usable audio: {str(error).replace(file.name, 'input_audio', 1)}", where) from None


def part_url(part: dict, kind: str, where: str) -> str:
    """The url of an `image_url` or `video_url` part: {"type": kind, kind: {"url": ...}} (or the url string itself)."""
    field = part.get(kind)
    url = field.get("url") if isinstance(field, dict) else field
    if not isinstance(url, str):
        raise RequestError(f"{kind} needs a 'url' string", f"{where}.{kind}")
    return url


def to_chat(messages, image_root: str | None, limits: Limits) -> list[dict]:
    """OpenAI chat messages -> the processor's structured chat (text and PIL image parts), checked field by field;
    the image count and the text's length are checked before any image is decoded."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list", "messages")
    parts_of = [message.get("content") if isinstance(message, dict) else None for message in messages]
    parts = [part for content in parts_of if isinstance(content, list) for part in content]
    for part_type, limit, noun in (("image_url", limits.max_images, "images"),
                                   ("input_audio", limits.max_audio, "audio parts"),
                                   ("video_url", limits.max_videos, "videos")):
        count = sum(isinstance(part, dict) and part.get("type") == part_type for part in parts)
        if count > limit:
            raise RequestError(f"{count} {noun} in one request, over this server's limit of {limit}", "messages")
    text = sum(len(content) for content in parts_of if isinstance(content, str)) + sum(
        len(part["text"]) for part in parts if isinstance(part, dict) and isinstance(part.get("text"), str))
    if text > limits.max_text_chars:
        raise RequestError(f"{text} characters of text, over this server's limit of {limits.max_text_chars}",
                           "messages")
    chat = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise RequestError("each message must be an object with 'role' and 'content'", where)
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise RequestError(f"role must be {', '.join(ROLES[:-1])} or {ROLES[-1]}, got {role!r}", f"{where}.role")
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        elif isinstance(content, list):
            parts = []
            for part_index, part in enumerate(content):
                part_where = f"{where}.content[{part_index}]"
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    parts.append({"type": "text", "text": part["text"]})
                elif kind == "image_url" and role == "user":
                    parts.append({"type": "image", "image": decode_image(
                        part_url(part, kind, part_where), f"{part_where}.{kind}", image_root=image_root,
                        max_pixels=limits.max_image_pixels)})
                elif kind == "input_audio" and role == "user":
                    parts.append({"type": "audio", "audio": decode_audio(
                        part.get("input_audio"), f"{part_where}.input_audio", limits.max_audio_seconds)})
                elif kind == "video_url" and role == "user":
                    parts.append({"type": "video", "video": decode_video(
                        part_url(part, kind, part_where), f"{part_where}.{kind}", image_root=image_root,
                        max_seconds=limits.max_video_seconds)})
                elif kind in ("image_url", "input_audio", "video_url"):
                    raise RequestError(f"images, audio and videos belong in user messages, not in {role} ones",
                                       part_where)
                else:
                    raise RequestError("parts must be {'type': 'text', 'text': ...}, {'type': 'image_url', "
                                       "'image_url': {'url': ...}}, {'type': 'input_audio', 'input_audio': "
                                       "{'data': ..., 'format': ...}} or {'type': 'video_url', 'video_url': "
                                       "{'url': ...}}", part_where)
            # Images, videos, then audio go before the text, as training put them (`<image>\n<video>\n<audio>\n...`),
            # whatever the client's order (lmms-eval's openai_compatible sends the text part first).
            parts.sort(key=lambda part: (*PLACEHOLDER_ORDER, "text").index(part["type"]))
        else:
            raise RequestError("content must be a string or a list of parts", f"{where}.content")
        chat.append({"role": role, "content": parts})
    if chat[-1]["role"] != "user":
        raise RequestError("the last message must come from the user", f"messages[{len(chat) - 1}].role")
    return chat


# The request's numeric fields: JSON type, lowest and highest value, default. The checks and the OpenAPI description
# both read them from here.
NUMBER_FIELDS = {
    "n": ("integer", 1, 1, 1),
    "max_tokens": ("integer", 1, 1 << 20, DEFAULT_MAX_TOKENS),
    "max_completion_tokens": ("integer", 1, 1 << 20, DEFAULT_MAX_TOKENS),  # OpenAI's newer name; wins when given
    "seed": ("integer", -(2**63), 2**63 - 1, None),
    "temperature": ("number", 0.0, 2.0, 0.0),  # 0: greedy
    "top_p": ("number", 0.0, 1.0, 1.0),
}
MAX_STOP_STRINGS = 4


def checked_number(body: dict, name: str):
    kind, low, high, default = NUMBER_FIELDS[name]
    value = body.get(name)
    if value is None:
        return default
    integer = kind == "integer"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high or (
            integer and not float(value).is_integer()):
        raise RequestError(f"'{name}' must be {'an integer' if integer else 'a number'} from {low} to {high}", name)
    return int(value) if integer else float(value)


def sampling_options(body: dict) -> dict:
    """generate() keyword arguments from the OpenAI request fields, checked ("seed" is popped before generating)."""
    for name, kind, description in (("stream", bool, "true or false"), ("model", str, "a string")):
        if body.get(name) is not None and not isinstance(body[name], kind):
            raise RequestError(f"'{name}' must be {description}, got {json.dumps(body[name])[:40]}", name)
    stream_options = body.get("stream_options")
    if stream_options is not None and not (isinstance(stream_options, dict) and isinstance(
            stream_options.get("include_usage", False), bool)):
        raise RequestError("'stream_options' must be an object like {\"include_usage\": true}", "stream_options")
    stop = body.get("stop")
    stop = [] if stop is None or stop == "" else [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(item, str) and item for item in stop) or (
            len(stop) > MAX_STOP_STRINGS):
        raise RequestError(f"'stop' must be a string or a list of up to {MAX_STOP_STRINGS} non-empty strings", "stop")
    # every field is checked, also one this request makes no use of (a top_p without sampling, say)
    numbers = {name: checked_number(body, name) for name in NUMBER_FIELDS}
    tokens_field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    options = {"max_new_tokens": numbers[tokens_field], "seed": numbers["seed"]}
    if numbers["temperature"] > 0:
        options.update(do_sample=True, temperature=numbers["temperature"], top_p=numbers["top_p"])
    if stop:
        options["stop_strings"] = stop
    return options


def openapi_document(model_name: str, limits: Limits, secured: bool) -> dict:
    """This API as an OpenAPI 3.1 document (GET /openapi.json), from the tables the checks above read (NUMBER_FIELDS,
    MAX_STOP_STRINGS, `limits`); what a schema cannot say (the last message comes from the user, paths stay under
    --image-root, pixels and durations read from the media's headers) is in the descriptions."""
    def nullable(schema: dict) -> dict:  # an absent or null field takes its default
        return {"oneOf": [{"type": "null"}, schema]}

    def part(kind: str, value: dict, description: str | None = None) -> dict:
        return {"type": "object", "required": ["type", kind], "properties": {"type": {"const": kind}, kind: value},
                **({"description": description} if description else {})}

    source = "a base64 data: URL, or a file path under the server's --image-root (refused without one)"
    url = {"oneOf": [{"type": "string"},
                     {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}]}
    content = {"type": "array", "items": {"oneOf": [
        part("text", {"type": "string"}),
        part("image_url", url, f"an image: {source}; at most {limits.max_image_pixels} pixels and "
                               f"{limits.max_images} images a request"),
        part("input_audio", {"type": "object", "required": ["data"], "properties": {
            "data": {"type": "string", "contentEncoding": "base64"},
            "format": {"type": "string", "pattern": "^[A-Za-z0-9]+$", "default": "wav"}}},
             f"audio (models with an audio branch): at most {limits.max_audio_seconds:g} s and {limits.max_audio} "
             "parts a request"),
        part("video_url", url, f"a video (models with an ImageBind tower): {source}; at most "
                               f"{limits.max_video_seconds:g} s and {limits.max_videos} videos a request")]}}
    message = {"type": "object", "required": ["role", "content"], "properties": {
        "role": {"enum": list(ROLES)},
        "content": {"oneOf": [{"type": "string"}, content]}},
        "description": "images, audio and videos in user messages only, put before the text as training did"}
    numbers = {name: nullable({"type": kind, "minimum": low, "maximum": high,
                               **({} if default is None else {"default": default})})
               for name, (kind, low, high, default) in NUMBER_FIELDS.items()}
    request = {"type": "object", "required": ["messages"], "properties": {
        "messages": {"type": "array", "minItems": 1, "items": message,
                     "description": f"the last one from the user; at most {limits.max_text_chars} characters of text"},
        "model": nullable({"type": "string"}), "stream": nullable({"type": "boolean", "default": False}),
        "stream_options": nullable({"type": "object", "properties": {"include_usage": {"type": "boolean"}},
                                    "description": "with \"stream\": true, include_usage adds a last chunk of usage"}),
        "stop": nullable({"oneOf": [{"type": "string"}, {"type": "array", "maxItems": MAX_STOP_STRINGS,
                                                           "items": {"type": "string", "minLength": 1}}]}),
        **numbers}}
    error = {"description": "an OpenAI-style error naming the field (`param`)", "content": {"application/json": {
        "schema": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "message": {"type": "string"}, "type": {"type": "string"}, "param": {"type": ["string", "null"]},
            "code": {"type": ["string", "null"]}}}}}}}}
    errors = {"400": error, "401": error, "404": error, "411": error, "413": error, "503": error}
    answer = {"type": "object", "properties": {"id": {"type": "string"}, "object": {"const": "chat.completion"},
                                               "model": {"type": "string"}, "choices": {"type": "array"},
                                               "usage": {"type": "object"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"nano-NextGPT: {model_name}", "version": "1",
                 "description": f"An OpenAI-compatible chat API; request bodies up to {limits.max_body_bytes} bytes, "
                                f"{limits.max_waiting} requests waiting (then 503 with Retry-After)."},
        "paths": {
            "/v1/chat/completions": {"post": {
                "summary": "answer a chat about images, audio or videos",
                "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
                "responses": {"200": {"description": "the answer, or with \"stream\": true server-sent events",
                                      "content": {"application/json": {"schema": answer},
                                                  "text/event-stream": {"schema": {"type": "string"}}}}, **errors}}},
            "/v1/models": {"get": {"summary": "the model served", "responses": {
                "200": {"description": "a list of one model"}, **errors}}},
            "/openapi.json": {"get": {"summary": "this document", "responses": {
                "200": {"description": "OpenAPI 3.1"}, **errors}}},
            "/metrics": {"get": {"summary": "the server's counters, for Prometheus", "responses": {
                "200": {"description": "Prometheus text format 0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}}}, **errors}}},
            "/health": {"get": {"summary": "whether the server is up", "security": [],
                                "responses": {"200": {"description": "{\"status\": \"ok\"}"}}}}},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}] if secured else [],
    }


def prometheus_text(metrics: list[Metric]) -> str:
    """The metrics in Prometheus' text format (version 0.0.4)."""
    lines = []
    for metric in metrics:
        lines += [f"# HELP {metric.name} {metric.help}", f"# TYPE {metric.name} {metric.kind}"]
        lines += [f"{metric.name}{{{labels}}} {value:g}" if labels else f"{metric.name} {value:g}"
                  for labels, value in metric.values.items()]
    return "\n".join(lines) + "\n"


def visible_text(text: str, stops: list[str], final: bool) -> str:
    """What the client may see of the answer so far: cut at the first stop string, and while generating, without a
    tail that could be the start of one (so nothing is sent that the stop string later removes)."""
    text = text.lstrip()
    cut = min((text.index(stop) for stop in stops if stop in text), default=None)
    if cut is not None:
        return text[:cut]
    if final:
        return text.rstrip()
    held = max((size for stop in stops for size in range(1, len(stop)) if text.endswith(stop[:size])), default=0)
    return text[: len(text) - held]


class IncrementalText:
    """The text a growing list of tokens adds, decoding only the tokens since the last piece shown (with that piece
    as context, so spaces and multi-token characters come out as in a whole decode) instead of everything each
    time."""

    def __init__(self, tokenizer):
        self.tokenizer, self.tokens, self.context, self.shown = tokenizer, [], 0, 0

    def add(self, tokens: list[int]) -> str:
        self.tokens += tokens
        before = self.tokenizer.decode(self.tokens[self.context:self.shown], skip_special_tokens=True)
        after = self.tokenizer.decode(self.tokens[self.context:], skip_special_tokens=True)
        if len(after) <= len(before) or after.endswith("\ufffd"):  # nothing yet, or half a character
            return ""
        self.context, self.shown = self.shown, len(self.tokens)
        return after[len(before):]


class NextGPTServer(ThreadingHTTPServer):
    """Holds the model; requests are parsed on their own threads and generated on the queue's one thread."""

    daemon_threads = True
    request_queue_size = 256  # the listen backlog: a burst of connections waits instead of being reset

    def __init__(self, address, model, processor, model_name: str, fast: bool, *, image_root: str | None = None,
                 max_batch_size: int = 32, batch_window_s: float = 0.005, prefill_window_s: float = PREFILL_WINDOW_S,
                 cache_bytes: int | None = None, limits: Limits = Limits(), api_key: str | None = None,
                 stream_interval_s: float = STREAM_INTERVAL_S):
        """`fast`: continuous batching on the fast decoder, whose KV cache takes `cache_bytes` (default: half the
        free GPU memory) and whose prefills, while other requests decode, wait up to `prefill_window_s` for more
        requests; else batches of `generate` from requests arriving within `batch_window_s`. A stream sends what
        arrived at most every `stream_interval_s` (its first text and its end at once)."""
        super().__init__(address, RequestHandler)
        self.model, self.processor, self.model_name = model, processor, model_name
        self.image_root, self.limits, self.api_key = image_root, limits, api_key
        self.stream_interval_s = stream_interval_s
        pad = processor.tokenizer.pad_token_id
        pad = pad if pad is not None else min(self.eos_ids, default=0)
        if fast:
            self.queue = ContinuousBatcher(model, processor.tokenizer, pad, self.eos_ids,
                                           max_batch_size=max_batch_size, max_waiting=limits.max_waiting,
                                           prefill_window_s=prefill_window_s, cache_bytes=cache_bytes)
            if model.device.type == "cuda":
                self.queue.warm_up()
        else:
            self.queue = GenerationQueue(model.generate, model.device, pad, self.eos_ids,
                                         max_batch_size=max_batch_size, window_s=batch_window_s,
                                         max_waiting=limits.max_waiting, max_length=model.config.context_length)
        self.queue.start()

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up between requests: not an error
            return
        super().handle_error(request, client_address)

    def prepare(self, body: dict) -> tuple[dict, dict]:
        chat = to_chat(body.get("messages"), self.image_root, self.limits)
        options = sampling_options(body)
        try:
            inputs = self.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=True,
                                                        return_dict=True, return_tensors="pt")
        except ValueError as error:  # e.g. an <image> typed into the text without its image
            raise RequestError(str(error), "messages") from None
        try:
            self.model.config.check_fits(inputs["input_ids"].shape[1], options["max_new_tokens"],
                                         limit=self.queue.max_length)
        except ValueError as error:
            raise RequestError(f"{error} (max_tokens)", "max_tokens") from None
        if "stop_strings" in options:
            options["tokenizer"] = self.processor.tokenizer
        return inputs, options

    def generate(self, inputs: dict, options: dict, streamed: bool = False) -> Job:
        """Queues the request; `.result()` gives its new tokens (up to and including end-of-sequence), `.stream()`
        them as they come when `streamed`. A full queue is a 503 that tells the client when to retry."""
        try:
            return self.queue.submit(Job(inputs, options, streamed))
        except QueueFull as error:
            raise RequestError(f"the server is busy ({error}); retry shortly", status=HTTPStatus.SERVICE_UNAVAILABLE,
                               code="server_busy") from None

    @property
    def eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        return set([eos] if isinstance(eos, int) else eos or [])

    def answer(self, new_tokens: list[int], options: dict) -> tuple[str, str]:
        """The answer's text (cut at a stop string) and OpenAI's finish_reason."""
        text = self.processor.tokenizer.decode(new_tokens, skip_special_tokens=True)
        stops = options.get("stop_strings", [])
        ended = any(stop in text for stop in stops) or bool(new_tokens) and new_tokens[-1] in self.eos_ids
        finish_reason = "stop" if ended or len(new_tokens) < options["max_new_tokens"] else "length"
        return visible_text(text, stops, final=True), finish_reason


class RequestHandler(BaseHTTPRequestHandler):
    server: NextGPTServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.timeout = self.server.limits.timeout_s  # applies to every read and write of this connection
        super().setup()

    def send_json(self, payload: dict, status: HTTPStatus = HTTPStatus.OK, headers: dict | None = None) -> None:
        self.send_body(json.dumps(payload).encode(), "application/json", status=status, headers=headers)

    def send_body(self, body: bytes, content_type: str, *, status: HTTPStatus = HTTPStatus.OK,
                  headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_error_json(self, error: RequestError) -> None:
        self.close_connection = True  # the body may be unread: never parse it as the next request
        kind = "invalid_request_error" if error.status < 500 else "server_error"
        headers = {"Retry-After": "1"} if error.status == HTTPStatus.SERVICE_UNAVAILABLE else {}
        if error.status == HTTPStatus.UNAUTHORIZED:
            headers["WWW-Authenticate"] = "Bearer"
        self.send_json({"error": {"message": str(error), "type": kind, "param": error.param, "code": error.code}},
                       error.status, headers)

    def check_api_key(self) -> None:
        expected = self.server.api_key
        given = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if expected and not hmac.compare_digest(given.encode(), expected.encode()):
            raise RequestError("a valid API key is required: send 'Authorization: Bearer KEY'",
                               status=HTTPStatus.UNAUTHORIZED, code="invalid_api_key")

    def do_GET(self) -> None:
        try:
            if self.path == "/health":
                self.send_json({"status": "ok"})
                return
            if self.path in ("/", "/index.html"):  # the chat page; its API calls carry the key
                self.send_page()
                return
            self.check_api_key()
            if self.path == "/openapi.json":
                self.send_json(openapi_document(self.server.model_name, self.server.limits, bool(self.server.api_key)))
                return
            if self.path == "/metrics":
                self.send_body(prometheus_text(self.server.queue.metrics()).encode(), "text/plain; version=0.0.4")
                return
            if self.path != "/v1/models":
                raise RequestError(f"no such endpoint: GET {self.path}", status=HTTPStatus.NOT_FOUND)
            self.send_json({"object": "list", "data": [
                {"id": self.server.model_name, "object": "model", "created": 0, "owned_by": "nano-nextgpt"}]})
        except RequestError as error:
            self.send_error_json(error)

    def send_page(self) -> None:
        with open(CHAT_PAGE, "rb") as handle:
            self.send_body(handle.read(), "text/html; charset=utf-8")

    def do_POST(self) -> None:
        try:
            self.check_api_key()
            if self.path != "/v1/chat/completions":
                raise RequestError(f"no such endpoint: POST {self.path}", status=HTTPStatus.NOT_FOUND)
            self.chat_completion(self.read_body())
        except RequestError as error:
            self.send_error_json(error)
            if error.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
                self.drain_body()
        except TimeoutError:  # a body that stopped arriving
            self.close_connection = True
        except ConnectionError:  # the client went away
            self.close_connection = True
        except Exception as error:  # a bug or an out-of-memory: report it, keep serving
            self.log_message("error: %r", error)
            self.send_error_json(RequestError(f"internal error: {error}", status=HTTPStatus.INTERNAL_SERVER_ERROR))

    def read_body(self) -> dict:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise RequestError("a Content-Length header is required", status=HTTPStatus.LENGTH_REQUIRED) from None
        if length < 0:
            raise RequestError(f"Content-Length must not be negative, got {length}")
        limit = self.server.limits.max_body_bytes
        if length > limit:
            raise RequestError(f"the request body is {length} bytes, over the limit of {limit}",
                               status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        try:
            body = json.loads(self.rfile.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RequestError(f"the request body is not valid JSON: {error}") from None
        except RecursionError:
            raise RequestError("the request body is nested too deeply") from None
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        return body

    def drain_body(self, seconds: float = 2.0) -> None:
        """After a 413: read (and drop) what the client is still uploading, for a moment, so that it gets to read the
        answer instead of a broken pipe; a client that keeps sending longer than that is cut off."""
        self.connection.settimeout(seconds)
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline and self.rfile.read1(1 << 16):
                pass
        except OSError:
            pass

    def chat_completion(self, body: dict) -> None:
        inputs, options = self.server.prepare(body)
        prompt_length = inputs["input_ids"].shape[1]
        response = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
                    "model": body.get("model") or self.server.model_name}
        if body.get("stream"):
            usage_for = prompt_length if (body.get("stream_options") or {}).get("include_usage") else None
            self.stream(inputs, options, response, usage_for)
            return
        job = self.server.generate(inputs, options)
        while not job.done.wait(0.25):
            if self.client_gone():  # dropped from the queue, or stopped at its next token
                job.cancelled.set()
                raise ConnectionError("the client went away")
        new_tokens = job.result()
        text, finish_reason = self.server.answer(new_tokens, options)
        self.send_json({**response, "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt_length, "completion_tokens": len(new_tokens),
                      "total_tokens": prompt_length + len(new_tokens)}})

    def client_gone(self) -> bool:
        """Whether the client has closed its side (readable with nothing to read), without consuming anything."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def stream(self, inputs: dict, options: dict, response: dict, usage_for: int | None) -> None:
        """Server-sent events: the text in pieces as it is generated, then the finish_reason, (with
        `stream_options.include_usage`, whose prompt length is `usage_for`) a chunk with the token counts, then
        [DONE]. A client that disconnects cancels the generation at its next token."""
        job = self.server.generate(inputs, options, streamed=True)
        try:
            self.send_events(job, options, response, usage_for)
        except (ConnectionError, TimeoutError):
            job.cancelled.set()
            self.close_connection = True

    def send_events(self, job: Job, options: dict, response: dict, usage_for: int | None) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.close_connection = True  # the stream has no length: it ends when the connection does

        def send(payload: dict) -> None:
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

        def send_delta(delta: dict, finish_reason: str | None = None) -> None:
            send({**response, "object": "chat.completion.chunk",
                  "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})

        send_delta({"role": "assistant"})
        received, sent, stops = "", "", options.get("stop_strings", [])
        text_of = IncrementalText(self.server.processor.tokenizer)
        for piece in job.stream():
            received += text_of.add(piece)
            visible = visible_text(received, stops, final=False)
            if len(visible) > len(sent):
                send_delta({"content": visible[len(sent):]})
                sent = visible
                # Tokens arriving meanwhile go out together: each wake-up of this thread takes the GIL from the
                # generation thread, which under load is what limits the decode steps.
                job.done.wait(self.server.stream_interval_s)
        try:
            new_tokens = job.result()
            text, finish_reason = self.server.answer(new_tokens, options)
        except GenerationCancelled:
            raise ConnectionError("the client went away") from None
        except Exception as error:  # generation failed after the response began: say so in the stream
            send({"error": {"message": f"internal error: {error}", "type": "server_error"}})
        else:
            if len(text) > len(sent):
                send_delta({"content": text[len(sent):]})
            send_delta({}, finish_reason)
            if usage_for is not None:
                send({**response, "object": "chat.completion.chunk", "choices": [], "usage": {
                    "prompt_tokens": usage_for, "completion_tokens": len(new_tokens),
                    "total_tokens": usage_for + len(new_tokens)}})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv: list[str] | None = None) -> int:
    from inference import MODEL_HELP, InputError, load

    parser = ArgumentParser(__doc__)
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="auto", choices=list(LOAD_DTYPES))
    add_quantize_option(parser)
    parser.add_argument("--fast", action=argparse.BooleanOptionalAction, default=None,
                        help="fast generation path; default: on with CUDA when the language model is Llama-family")
    parser.add_argument("--image-root", help="allow image and video file paths (image_url, video_url) under this "
                                             "folder")
    parser.add_argument("--max-batch-size", type=at_least(1), default=32, help="requests generated together at most")
    parser.add_argument("--kv-cache-gib", type=at_least(0, float, inclusive=False),
                        help="fast path: the KV cache's size, which sets the longest prompt + answer (default: half "
                             f"the GPU memory free after loading, {CPU_CACHE_BYTES / 2**30:g} GiB on CPU)")
    parser.add_argument("--batch-window-ms", type=at_least(0, float), default=5.0,
                        help="without the fast path: how long the first request waits for others to share its batch")
    parser.add_argument("--stream-interval-ms", type=at_least(0, float), default=STREAM_INTERVAL_S * 1e3,
                        help="a streamed answer sends what it has at most this often (default %(default)g; its first "
                             "text and its end go out at once): fewer wake-ups of the request threads under load")
    parser.add_argument("--prefill-window-ms", type=at_least(0, float), default=PREFILL_WINDOW_S * 1e3,
                        help="fast path, while other requests decode: how long a new request waits for others to "
                             "share its prefill when every row decodes (scaled by the share of rows decoding; "
                             "default %(default)g): fewer, fuller prefills stall the decoding rows less often")
    defaults = Limits()
    parser.add_argument("--max-images", type=at_least(0), default=defaults.max_images,
                        help="images per request at most")
    parser.add_argument("--max-image-pixels", type=at_least(1), default=defaults.max_image_pixels,
                        help="width x height of one image at most, read from its header before decoding")
    parser.add_argument("--max-audio", type=at_least(0), default=defaults.max_audio,
                        help="audio parts per request at most")
    parser.add_argument("--max-audio-seconds", type=at_least(0, float, inclusive=False),
                        default=defaults.max_audio_seconds,
                        help="length of one audio part at most, read from its header before decoding")
    parser.add_argument("--max-videos", type=at_least(0), default=defaults.max_videos,
                        help="videos per request at most")
    parser.add_argument("--max-video-seconds", type=at_least(0, float, inclusive=False),
                        default=defaults.max_video_seconds,
                        help="length of one video at most, read from its headers before decoding")
    parser.add_argument("--max-waiting", type=at_least(1), default=defaults.max_waiting,
                        help="requests waiting for generation at most; more are answered 503 with Retry-After")
    parser.add_argument("--timeout", type=at_least(0, float, inclusive=False), default=defaults.timeout_s,
                        help="seconds an idle connection, or a body arriving slower, is kept")
    parser.add_argument("--api-key", default=os.environ.get(API_KEY_VARIABLE),
                        help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_VARIABLE}; /health stays open)")
    args = parser.parse_args(argv)
    # The generation thread gives up the GIL at every GPU wait; taking it back from a request thread that is busy
    # (decoding an image, writing a stream) takes up to this interval, 5 ms by default: as long as a decode step.
    sys.setswitchinterval(0.0005)
    try:
        model, processor, source, fast = load(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    name = os.path.basename(os.path.normpath(source))
    limits = Limits(max_images=args.max_images, max_image_pixels=args.max_image_pixels, max_audio=args.max_audio,
                    max_audio_seconds=args.max_audio_seconds, max_videos=args.max_videos,
                    max_video_seconds=args.max_video_seconds, max_waiting=args.max_waiting, timeout_s=args.timeout)
    server = NextGPTServer((args.host, args.port), model, processor, name, fast, image_root=args.image_root,
                           max_batch_size=args.max_batch_size, batch_window_s=args.batch_window_ms / 1e3,
                           prefill_window_s=args.prefill_window_ms / 1e3,
                           cache_bytes=None if args.kv_cache_gib is None else int(args.kv_cache_gib * 2**30),
                           limits=limits, api_key=args.api_key, stream_interval_s=args.stream_interval_ms / 1e3)
    if not args.api_key and not is_loopback(args.host):
        print(f"warning: serving on {args.host} to other machines without an API key (--api-key or "
              f"${API_KEY_VARIABLE})", file=sys.stderr)
    engine = (f"fast path, continuous batching of {args.max_batch_size} rows, up to {server.queue.max_length} tokens "
              "a request" if fast else "generate")
    print(f"serving {name} on http://{args.host}:{server.server_port}/v1 ({args.device}, {engine})", file=sys.stderr,
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
