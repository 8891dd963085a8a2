"""An OpenAI-compatible HTTP server for a NextGPT model (standard library only).

    python serve.py                                   # the default offline model on 127.0.0.1:8000
    python serve.py --model outputs/stage2/final --port 8080 --image-root /data/images

    curl localhost:8000/v1/chat/completions -H 'Content-Type: application/json' -d '{"messages": [{"role": "user",
      "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}},
                  {"type": "text", "text": "What shape is in the image?"}]}], "max_tokens": 32}'

Endpoints: POST /v1/chat/completions (images as data: URLs, or as files under --image-root; "stream": true for
server-sent events), GET /v1/models, GET /health. On CUDA, answers come from the fast generation path. Requests
that arrive together with the same sampling options are generated as one batch (generation_queue.py). Every bad
request gets an OpenAI-style error naming the field.
"""

import argparse
import base64
import binascii
import io
import json
import os
import sys
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
from PIL import Image, UnidentifiedImageError

from generation_queue import GenerationQueue, Job

MAX_BODY_BYTES = 32 * 2**20
DEFAULT_MAX_TOKENS = 256


class RequestError(Exception):
    """A bad request: sent back as an OpenAI-style error with this status."""

    def __init__(self, message: str, param: str | None = None, status: HTTPStatus = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.param, self.status = param, status


def decode_image(url: str, where: str, image_root: str | None) -> Image.Image:
    """A PIL image from a data: URL, or from a file path under `image_root`."""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.endswith(";base64"):
            raise RequestError("image data URLs must be base64 (data:image/...;base64,...)", where)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("the image data URL is not valid base64", where) from None
        source = io.BytesIO(data)
    elif url.startswith(("http://", "https://")):
        raise RequestError("remote image URLs are not fetched by this server; send the image as a data: URL", where)
    elif image_root is None:
        raise RequestError("image file paths are refused (start the server with --image-root to allow them)", where)
    else:
        root = os.path.realpath(image_root)
        path = os.path.realpath(os.path.join(root, url.removeprefix("file://")))
        if os.path.commonpath([root, path]) != root:
            raise RequestError(f"image path {url!r} lies outside --image-root", where)
        if not os.path.isfile(path):
            raise RequestError(f"image file {url!r} not found under --image-root", where)
        source = path
    try:
        with Image.open(source) as image:
            image.load()
            return image.convert("RGB")
    except UnidentifiedImageError:
        raise RequestError("not a readable image: no image format recognised", where) from None
    except (OSError, Image.DecompressionBombError) as error:  # truncated, damaged, or absurdly large
        raise RequestError(f"not a readable image ({error})", where) from None


def to_chat(messages, image_root: str | None) -> list[dict]:
    """OpenAI chat messages -> the processor's structured chat (text and PIL image parts), checked field by field."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list", "messages")
    chat = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise RequestError("each message must be an object with 'role' and 'content'", where)
        role, content = message.get("role"), message.get("content")
        if role not in ("system", "user", "assistant"):
            raise RequestError(f"role must be system, user or assistant, got {role!r}", f"{where}.role")
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        elif isinstance(content, list) and role == "user":
            parts = []
            for part_index, part in enumerate(content):
                part_where = f"{where}.content[{part_index}]"
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    parts.append({"type": "text", "text": part["text"]})
                elif kind == "image_url":
                    image_url = part.get("image_url")
                    url = image_url.get("url") if isinstance(image_url, dict) else image_url
                    if not isinstance(url, str):
                        raise RequestError("image_url needs a 'url' string", f"{part_where}.image_url")
                    parts.append({"type": "image", "image": decode_image(url, f"{part_where}.image_url", image_root)})
                else:
                    raise RequestError("parts must be {'type': 'text', 'text': ...} or {'type': 'image_url', "
                                       "'image_url': {'url': ...}}", part_where)
        else:
            raise RequestError("content must be a string (or, for user messages, a list of parts)", f"{where}.content")
        chat.append({"role": role, "content": parts})
    if chat[-1]["role"] != "user":
        raise RequestError("the last message must come from the user", f"messages[{len(chat) - 1}].role")
    return chat


def checked_number(body: dict, name: str, default, low, high, integer: bool = False):
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high or (
            integer and not float(value).is_integer()):
        raise RequestError(f"'{name}' must be {'an integer' if integer else 'a number'} from {low} to {high}", name)
    return int(value) if integer else float(value)


def sampling_options(body: dict) -> dict:
    """generate() keyword arguments from the OpenAI request fields, checked ("seed" is popped before generating)."""
    checked_number(body, "n", 1, 1, 1, integer=True)
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(item, str) and item for item in stop) or len(stop) > 4:
        raise RequestError("'stop' must be a string or a list of up to 4 non-empty strings", "stop")
    tokens_field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    options = {"max_new_tokens": checked_number(body, tokens_field, DEFAULT_MAX_TOKENS, 1, 1 << 20, integer=True),
               "seed": checked_number(body, "seed", None, -(2**63), 2**63 - 1, integer=True)}
    temperature = checked_number(body, "temperature", 0.0, 0.0, 2.0)
    if temperature > 0:
        options.update(do_sample=True, temperature=temperature, top_p=checked_number(body, "top_p", 1.0, 0.0, 1.0))
    if stop:
        options["stop_strings"] = stop
    return options


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


class NextGPTServer(ThreadingHTTPServer):
    """Holds the model; requests are parsed on their own threads and generated on the queue's one thread."""

    daemon_threads = True

    def __init__(self, address, model, processor, model_name: str, fast: bool, image_root: str | None = None,
                 max_batch_size: int = 8, batch_window_s: float = 0.005):
        super().__init__(address, RequestHandler)
        self.model, self.processor, self.model_name = model, processor, model_name
        self.image_root = image_root
        pad = processor.tokenizer.pad_token_id
        pad = pad if pad is not None else min(self.eos_ids, default=0)
        self.queue = GenerationQueue(model.fast_generate if fast else model.generate, model.device, pad,
                                     self.eos_ids, max_batch_size, batch_window_s)

    def prepare(self, body: dict) -> tuple[dict, dict]:
        chat = to_chat(body.get("messages"), self.image_root)
        options = sampling_options(body)
        try:
            inputs = self.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)
        except ValueError as error:  # e.g. an <image> typed into the text without its image
            raise RequestError(str(error), "messages") from None
        prompt_length = inputs["input_ids"].shape[1]
        limit = self.model.config.context_length
        if limit and prompt_length + options["max_new_tokens"] > limit:
            raise RequestError(f"the prompt is {prompt_length} tokens and max_tokens {options['max_new_tokens']}: "
                               f"together past the model's context of {limit}", "max_tokens")
        if "stop_strings" in options:
            options["tokenizer"] = self.processor.tokenizer
        return inputs, options

    def generate(self, inputs: dict, options: dict, streamer=None) -> Job:
        """Queues the request; `.result()` gives its new tokens (up to and including end-of-sequence)."""
        return self.queue.submit(Job(inputs, options, streamer))

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

    def send_json(self, payload: dict, status: HTTPStatus = HTTPStatus.OK) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, error: RequestError) -> None:
        self.close_connection = True  # the body may be unread: never parse it as the next request
        kind = "invalid_request_error" if error.status < 500 else "server_error"
        self.send_json({"error": {"message": str(error), "type": kind, "param": error.param, "code": None}},
                       error.status)

    def do_GET(self) -> None:
        if self.path == "/health":
            self.send_json({"status": "ok"})
        elif self.path == "/v1/models":
            self.send_json({"object": "list", "data": [
                {"id": self.server.model_name, "object": "model", "created": 0, "owned_by": "nano-nextgpt"}]})
        else:
            self.send_error_json(RequestError(f"no such endpoint: GET {self.path}", status=HTTPStatus.NOT_FOUND))

    def do_POST(self) -> None:
        try:
            if self.path != "/v1/chat/completions":
                raise RequestError(f"no such endpoint: POST {self.path}", status=HTTPStatus.NOT_FOUND)
            self.chat_completion(self.read_body())
        except RequestError as error:
            self.send_error_json(error)
        except ConnectionError:  # the client went away
            pass
        except Exception as error:  # a bug or an out-of-memory: report it, keep serving
            self.log_message("error: %r", error)
            self.send_error_json(RequestError(f"internal error: {error}", status=HTTPStatus.INTERNAL_SERVER_ERROR))

    def read_body(self) -> dict:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise RequestError("a Content-Length header is required", status=HTTPStatus.LENGTH_REQUIRED) from None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise RequestError(f"the request body is {length} bytes, over the limit of {MAX_BODY_BYTES}",
                               status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        try:
            body = json.loads(self.rfile.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RequestError(f"the request body is not valid JSON: {error}") from None
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        return body

    def chat_completion(self, body: dict) -> None:
        inputs, options = self.server.prepare(body)
        prompt_length = inputs["input_ids"].shape[1]
        response = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
                    "model": body.get("model") or self.server.model_name}
        if body.get("stream"):
            self.stream(inputs, options, response)
            return
        new_tokens = self.server.generate(inputs, options).result()
        text, finish_reason = self.server.answer(new_tokens, options)
        self.send_json({**response, "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt_length, "completion_tokens": len(new_tokens),
                      "total_tokens": prompt_length + len(new_tokens)}})

    def stream(self, inputs: dict, options: dict, response: dict) -> None:
        """Server-sent events: the text in pieces as it is generated, then the finish_reason, then [DONE]."""
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.server.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        job = self.server.generate(inputs, options, streamer)
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
        for piece in streamer:
            received += piece
            visible = visible_text(received, stops, final=False)
            if len(visible) > len(sent):
                send_delta({"content": visible[len(sent):]})
                sent = visible
        try:
            text, finish_reason = self.server.answer(job.result(), options)
        except Exception as error:  # generation failed after the response began: say so in the stream
            send({"error": {"message": f"internal error: {error}", "type": "server_error"}})
        else:
            if len(text) > len(sent):
                send_delta({"content": text[len(sent):]})
            send_delta({}, finish_reason)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def main(argv: list[str] | None = None) -> int:
    from inference import DTYPES, InputError, load

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model",
                        help="a NextGPT folder or hub id (default: the offline SmolLM2 + EfficientNet model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="auto", choices=list(DTYPES))
    parser.add_argument("--fast", action=argparse.BooleanOptionalAction, default=None,
                        help="fast generation path; default: on with CUDA when the language model is Llama-family")
    parser.add_argument("--image-root", help="allow image file paths (in image_url) under this folder")
    parser.add_argument("--max-batch-size", type=int, default=8, help="requests generated together at most")
    parser.add_argument("--batch-window-ms", type=float, default=5.0,
                        help="how long the first request waits for others to share its batch")
    args = parser.parse_args(argv)
    try:
        model, processor = load(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    name = os.path.basename(os.path.normpath(args.model))
    server = NextGPTServer((args.host, args.port), model, processor, name, args.fast, args.image_root,
                           args.max_batch_size, args.batch_window_ms / 1e3)
    print(f"serving {name} on http://{args.host}:{server.server_port}/v1 ({args.device}, "
          f"{'fast path' if args.fast else 'generate'})", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
