"""serve.py over HTTP: answers equal `generate`'s, streaming, stop strings, and a named error for every bad request."""

import base64
import http.client
import io
import json
import threading
import time
import urllib.error
import urllib.request

import pytest
import torch

from conftest import REPO_ROOT, random_image, tiny_config, tiny_model
from generation_queue import GenerationCancelled
from serve import (NUMBER_FIELDS, Limits, NextGPTServer, RequestError, sampling_options, to_chat,
                   visible_text)


def data_url(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def start(model, processor, image_root=None, fast: bool = False, **batching) -> NextGPTServer:
    server = NextGPTServer(("127.0.0.1", 0), model, processor, "tiny", fast=fast, image_root=image_root, **batching)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def request(server, body=None, path="/v1/chat/completions", raw: bytes | None = None) -> tuple[int, str]:
    url = f"http://127.0.0.1:{server.server_port}{path}"
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def events(text: str) -> list:
    lines = [line.removeprefix("data: ") for line in text.split("\n\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def streamed_text(text: str) -> tuple[str, str]:
    chunks = events(text)
    content = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    return content, chunks[-1]["choices"][0]["finish_reason"]


@pytest.fixture
def tiny(make_processor):
    config = tiny_config("embedding")
    model, processor = tiny_model(config, seed=1), make_processor(config)
    model.generation_config.eos_token_id = None  # random weights: always the full length
    server = start(model, processor, image_root=str(REPO_ROOT / "examples"))
    yield server
    server.shutdown()
    server.server_close()


def user_message(image_url: str, question: str = "What shape is this?") -> dict:
    return {"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_url}},
                                        {"type": "text", "text": question}]}


def test_answer_equals_generate_and_streaming_gives_the_same_text(tiny):
    image = random_image(3)
    status, text = request(tiny, {"messages": [user_message(data_url(image))], "max_tokens": 8})
    assert status == 200, text
    reply = json.loads(text)
    processor, model = tiny.processor, tiny.model
    chat = [{"role": "user", "content": [{"type": "image", "image": image},
                                         {"type": "text", "text": "What shape is this?"}]}]
    inputs = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True,
                                            return_tensors="pt")
    expected = model.generate(**inputs, max_new_tokens=8, do_sample=False)[0, inputs["input_ids"].shape[1]:]
    assert reply["choices"][0]["message"] == {
        "role": "assistant", "content": processor.tokenizer.decode(expected, skip_special_tokens=True).strip()}
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"] == {"prompt_tokens": inputs["input_ids"].shape[1], "completion_tokens": 8,
                              "total_tokens": inputs["input_ids"].shape[1] + 8}
    status, text = request(tiny, {"messages": [user_message(data_url(image))], "max_tokens": 8, "stream": True})
    assert status == 200 and streamed_text(text) == (reply["choices"][0]["message"]["content"], "length")


def test_stop_strings_cut_the_answer_streamed_or_not(tiny):
    body = {"messages": [user_message("red_triangle.png")], "max_tokens": 12}  # a file under --image-root
    status, text = request(tiny, body)
    assert status == 200, text
    full = json.loads(text)["choices"][0]["message"]["content"]
    stop = full[len(full) // 2: len(full) // 2 + 3]
    expected = full[: full.index(stop)].rstrip()
    status, text = request(tiny, {**body, "stop": [stop]})
    choice = json.loads(text)["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == (expected, "stop")
    status, text = request(tiny, {**body, "stop": stop, "stream": True})
    assert streamed_text(text) == (expected, "stop")


def test_visible_text_holds_back_what_may_become_a_stop_string():
    assert visible_text(" a red tri", ["triangle"], final=False) == "a red "
    assert visible_text(" a red triangle here", ["triangle"], final=False) == "a red "
    assert visible_text(" a red tri ", ["triangle"], final=True) == "a red tri"


@pytest.mark.parametrize("body, status, param, message", [
    (b"{not json", 400, None, "not valid JSON"),
    ([1, 2], 400, None, "must be a JSON object"),
    ({}, 400, "messages", "non-empty list"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, 400, "messages[0].role", "role must be"),
    ({"messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content", "content must be"),
    ({"messages": [{"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "x.png"}}]},
                   {"role": "user", "content": "hi"}]}, 400, "messages[0].content[0]", "audio and videos belong in user"),
    ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, 400, "messages[0].content[0]", "parts must"),
    ({"messages": [user_message("data:image/png;base64,!!!")]}, 400, "messages[0].content[0].image_url",
     "not valid base64"),
    ({"messages": [user_message("data:image/png;base64," + base64.b64encode(b"no image").decode())]}, 400,
     "messages[0].content[0].image_url", "not a readable image"),
    ({"messages": [user_message("https://example.com/cat.jpg")]}, 400, "messages[0].content[0].image_url",
     "remote image URLs"),
    ({"messages": [user_message("../setup.cfg")]}, 400, "messages[0].content[0].image_url", "outside --image-root"),
    ({"messages": [user_message("missing.png")]}, 400, "messages[0].content[0].image_url", "not found"),
    ({"messages": [{"role": "user", "content": "<image> what is it?"}]}, 400, "messages", "placeholders"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, 400, "messages[0].role", "last message"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, 400, "max_tokens", "integer from 1"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4000}, 400, "max_tokens",
     "past the 2048 positions available"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "n", "from 1 to 1"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, 400, "temperature", "a number"),
    ({"messages": [{"role": "user", "content": "hi"}], "stop": [""]}, 400, "stop", "non-empty strings"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, 400, "stream", "true or false"),
    ({"messages": [{"role": "user", "content": "hi"}], "model": 3}, 400, "model", "a string"),
    ({"messages": [user_message("red\u0000triangle.png")]}, 400, "messages[0].content[0].image_url", "NUL"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x.png"}}] * 9}]}, 400,
     "messages", "9 images in one request, over this server's limit of 8"),
    ({"messages": [{"role": "user", "content": "word " * 20001}]}, 400, "messages", "characters of text"),
    (b"[" * 100000 + b"]" * 100000, 400, None, "nested too deeply"),
])
def test_bad_requests_get_an_error_that_names_the_field(tiny, body, status, param, message):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    got_status, text = request(tiny, raw=raw)
    error = json.loads(text)["error"]
    assert (got_status, error["param"], error["type"]) == (status, param, "invalid_request_error")
    assert message in error["message"]


def bounds_and_beyond(kind: str, low, high) -> list:
    """A numeric field's values at its bounds, just past them, of the wrong type, and null."""
    step = 1 if kind == "integer" else 0.1
    return [low, high, low - step, high + step, None, "1", True] + ([low + 0.5] if kind == "integer" else [])


def test_the_openapi_document_is_valid_and_agrees_with_the_checks(tiny):
    """GET /openapi.json: a valid OpenAPI 3.1 document, whose request schema accepts exactly what the server's checks
    accept, field by field: every numeric field at, past and beside its bounds, stop strings, types, messages and
    their parts. (What no schema says, such as the last message coming from the user, is in its descriptions.)"""
    from jsonschema import Draft202012Validator
    from openapi_spec_validator import validate

    status, text = request(tiny, path="/openapi.json")
    document = json.loads(text)
    assert status == 200 and document["info"]["title"] == "nano-NextGPT: tiny" and document["security"] == []
    validate(document)
    post = document["paths"]["/v1/chat/completions"]["post"]
    validator = Draft202012Validator(post["requestBody"]["content"]["application/json"]["schema"])
    hello = [{"role": "user", "content": "hi"}]
    image = {"type": "image_url", "image_url": {"url": data_url(random_image(size=(8, 8)))}}
    cases = [{name: value} for name, (kind, low, high, _) in NUMBER_FIELDS.items()
             for value in bounds_and_beyond(kind, low, high)]
    cases += [{"stop": stop} for stop in ("", "x", [], ["a", "b", "c", "d"], ["a"] * 5, [""], [1], 0, False, {})]
    cases += [{"stream": True}, {"stream": "yes"}, {"model": "tiny"}, {"model": 3}, {"stream_options": {}},
              {"stream_options": {"include_usage": True}}, {"stream_options": {"include_usage": "yes"}},
              {"stream_options": []}]
    cases += [{"messages": messages} for messages in (
        [], "hi", [{"role": "tool", "content": "hi"}], [{"role": "user", "content": 5}], [{"role": "user"}],
        [{"role": "user", "content": [{"type": "text", "text": "hi"}, image]}],
        [{"role": "user", "content": [{"type": "audio", "audio": "x"}]}],
        [{"role": "user", "content": [{"type": "text", "text": 5}]}],
        [{"role": "user", "content": [{"type": "image_url"}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"link": "x"}}]}])]
    verdicts = []
    for case in cases:
        body = {"messages": hello, **case}
        try:
            to_chat(body["messages"], None, Limits())
            sampling_options(body)
            accepted = True
        except RequestError:
            accepted = False
        assert validator.is_valid(body) == accepted, (case, accepted)
        verdicts.append(accepted)
    assert 20 < verdicts.count(False) < len(cases) - 15  # both kinds tried


def test_routes_sizes_and_the_server_keeps_serving(tiny):
    assert request(tiny, path="/health") == (200, '{"status": "ok"}')
    assert json.loads(request(tiny, path="/v1/models")[1])["data"][0]["id"] == "tiny"
    assert "# TYPE nextgpt_requests_total counter" in request(tiny, path="/metrics")[1]  # generate's batches too
    assert request(tiny, path="/v1/nothing")[0] == 404
    assert request(tiny, {"messages": []}, path="/v1/completions")[0] == 404
    connection = http.client.HTTPConnection("127.0.0.1", tiny.server_port, timeout=30)
    connection.putrequest("POST", "/v1/chat/completions")
    connection.putheader("Content-Length", str(10**9))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and "over the limit" in json.loads(response.read())["error"]["message"]
    status, _ = request(tiny, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    assert status == 200


def test_concurrent_requests_each_get_their_own_answer(tiny):
    from concurrent.futures import ThreadPoolExecutor

    questions = ["hi", "What shape is this picture showing, and in which colour?", "Colour?", "Is it a circle?"]
    bodies = [{"messages": [{"role": "user", "content": question}], "max_tokens": 5} for question in questions]
    one_by_one = [json.loads(request(tiny, body)[1])["choices"] for body in bodies]
    with ThreadPoolExecutor(4) as pool:
        together = [json.loads(text)["choices"] for _, text in pool.map(lambda body: request(tiny, body), bodies)]
    assert together == one_by_one and len({choice[0]["message"]["content"] for choice in together}) > 1


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_requests_arriving_together_share_a_batch_and_get_their_own_answers(make_processor, stream):
    from concurrent.futures import ThreadPoolExecutor

    config = tiny_config("embedding")
    model, processor = tiny_model(config, seed=1), make_processor(config)
    model.generation_config.eos_token_id = None
    server = start(model, processor, batch_window_s=0.5)  # a wide window, so that all four surely meet
    try:
        bodies = [{"messages": [user_message(data_url(random_image(index)), f"Question {index}?")],
                   "max_tokens": 3 + index} for index in range(3)]
        bodies.append({"messages": [{"role": "user", "content": "No image here, a longer question?"}], "max_tokens": 4})
        one_by_one = [json.loads(request(server, body)[1]) for body in bodies]
        assert set(server.queue.batch_sizes) == {1}
        with ThreadPoolExecutor(4) as pool:
            texts = [text for _, text in pool.map(lambda body: request(server, {**body, "stream": stream}), bodies)]
        assert max(server.queue.batch_sizes) > 1
        expected = [(reply["choices"][0]["message"]["content"], reply["choices"][0]["finish_reason"])
                    for reply in one_by_one]
        if stream:  # each stream carries its own row's text and ends at its own max_tokens
            assert [streamed_text(text) for text in texts] == expected
        else:
            together = [json.loads(text) for text in texts]
            assert [(reply["choices"][0]["message"]["content"], reply["choices"][0]["finish_reason"])
                    for reply in together] == expected
            assert [reply["usage"]["completion_tokens"] for reply in together] == [3, 4, 5, 4]
    finally:
        server.shutdown()
        server.server_close()


def test_sampling_with_a_seed_repeats(tiny):
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 6, "temperature": 0.9, "seed": 7}
    first, second = request(tiny, body), request(tiny, body)
    assert first[0] == 200 and json.loads(first[1])["choices"] == json.loads(second[1])["choices"]


def test_the_shipped_model_answers_over_http(default_folder):
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(default_folder, trust_remote_code=True, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(default_folder, trust_remote_code=True)
    server = start(model, processor)
    try:
        with open(REPO_ROOT / "examples" / "red_triangle.png", "rb") as handle:
            url = "data:image/png;base64," + base64.b64encode(handle.read()).decode()
        status, text = request(server, {"messages": [user_message(url, "What shape is in the image?")]})
        assert status == 200, text
        reply = json.loads(text)["choices"][0]
        assert (reply["message"]["content"], reply["finish_reason"]) == ("triangle", "stop")
    finally:
        server.shutdown()
        server.server_close()


def start_with(make_processor, **server_options) -> NextGPTServer:
    config = tiny_config("embedding")
    model, processor = tiny_model(config, seed=1), make_processor(config)
    model.generation_config.eos_token_id = None
    return start(model, processor, **server_options)


def stop(server: NextGPTServer) -> None:
    server.shutdown()
    server.server_close()


def test_an_image_too_large_is_refused_from_its_header_before_decoding(tiny):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (4200, 4200)).save(buffer, format="PNG")  # 17.6 M pixels in a few kB; decoding is what costs
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    status, text = request(tiny, {"messages": [user_message(url)]})
    error = json.loads(text)["error"]
    assert (status, error["param"]) == (400, "messages[0].content[0].image_url")
    assert "4200 x 4200 pixels, over this server's limit of 16777216" in error["message"]


def test_malformed_lengths_get_4xx_and_a_large_upload_reads_its_413(tiny):
    connection = http.client.HTTPConnection("127.0.0.1", tiny.server_port, timeout=30)
    connection.putrequest("POST", "/v1/chat/completions")
    connection.putheader("Content-Length", "-5")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 400 and "must not be negative" in json.loads(response.read())["error"]["message"]
    # A client that uploads all of a too-large body before reading gets the 413, not a broken pipe.
    body = b"x" * (tiny.limits.max_body_bytes + 2**20)
    connection = http.client.HTTPConnection("127.0.0.1", tiny.server_port, timeout=30)
    connection.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 413 and "over the limit" in json.loads(response.read())["error"]["message"]


def test_a_full_queue_answers_503_with_retry_after(make_processor):
    server = start_with(make_processor, limits=Limits(max_waiting=1), max_batch_size=1)
    entered, release, original = threading.Event(), threading.Event(), server.queue.generate

    def held(**kwargs):
        entered.set()
        release.wait(30)
        return original(**kwargs)

    server.queue.generate = held
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    results = []
    try:
        first = threading.Thread(target=lambda: results.append(request(server, body)))
        first.start()
        assert entered.wait(30)  # the generation thread holds the first request
        second = threading.Thread(target=lambda: results.append(request(server, body)))
        second.start()
        deadline = time.monotonic() + 30
        while server.queue.waiting < 1 and time.monotonic() < deadline:  # the second one waits
            time.sleep(0.01)
        url = f"http://127.0.0.1:{server.server_port}/v1/chat/completions"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, data=json.dumps(body).encode()), timeout=30)
        assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "1"
        assert json.loads(refused.value.read())["error"]["code"] == "server_busy"
        release.set()
        first.join(30)
        second.join(30)
        assert [status for status, _ in results] == [200, 200]
    finally:
        release.set()
        stop(server)


def test_an_api_key_guards_every_endpoint_but_health(make_processor):
    server = start_with(make_processor, api_key="sekret")
    url = f"http://127.0.0.1:{server.server_port}"
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()

    def status(path, key=None, data=None):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(url + path, data=data, headers=headers)) as response:
                return response.status
        except urllib.error.HTTPError as error:
            assert error.code != 401 or error.headers["WWW-Authenticate"] == "Bearer"
            return error.code

    try:
        assert status("/health") == 200
        assert status("/v1/models") == status("/v1/models", "wrong") == 401
        assert status("/v1/chat/completions", data=body) == 401
        assert status("/v1/models", "sekret") == status("/v1/chat/completions", "sekret", body) == 200
        assert status("/openapi.json") == 401 and status("/openapi.json", "sekret") == 200
        assert status("/metrics") == 401 and status("/metrics", "sekret") == 200
    finally:
        stop(server)


def test_idle_and_slow_connections_are_closed(make_processor):
    import socket

    server = start_with(make_processor, limits=Limits(timeout_s=0.5))
    try:
        idle = socket.create_connection(("127.0.0.1", server.server_port), timeout=10)
        slow = socket.create_connection(("127.0.0.1", server.server_port), timeout=10)
        slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"messages\"")
        assert idle.recv(1024) == b""  # closed by the server after half a second, not held forever
        assert slow.recv(1024) == b""
    finally:
        stop(server)


def test_a_burst_of_256_connections_is_answered_without_resets(tiny):
    from concurrent.futures import ThreadPoolExecutor

    barrier = threading.Barrier(256)

    def health(_):
        connection = http.client.HTTPConnection("127.0.0.1", tiny.server_port, timeout=60)
        barrier.wait(30)
        connection.request("GET", "/health")
        return connection.getresponse().status

    with ThreadPoolExecutor(256) as pool:
        assert list(pool.map(health, range(256))) == [200] * 256


def test_a_stream_whose_client_leaves_is_cancelled(make_processor):
    import socket

    server = start_with(make_processor)
    jobs, submit = [], server.queue.submit
    server.queue.submit = lambda job: jobs.append(job) or submit(job)
    try:
        body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1500, "stream": True})
        client = socket.create_connection(("127.0.0.1", server.server_port), timeout=30)
        client.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        received = b""
        while b"data: " not in received:  # the headers and the first event may arrive in separate segments
            chunk = client.recv(4096)
            assert chunk, received
            received += chunk
        client.close()
        assert jobs[0].done.wait(60)
        assert isinstance(jobs[0].error, GenerationCancelled)
        status, _ = request(server, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        assert status == 200
    finally:
        stop(server)


def test_fuzzed_requests_only_ever_get_2xx_or_4xx(tiny):
    """Random and mutated bodies (bounded: 400 requests, loopback): never a 5xx, and the server stays up."""
    import random

    rng = random.Random(0)
    values = [None, True, False, 0, -1, 1, 2**70, 1e308, "", "x" * 5000, "\u0000", "<image>", [], {}, [[[]]],
              {"type": "image_url"}, {"type": "text", "text": 5}, {"url": "data:image/png;base64,AAAA"},
              [{"type": "image_url", "image_url": {"url": "../../etc/passwd"}}], "data:,", {"role": "user"}]
    base = {"messages": [user_message(data_url(random_image(1)), "What is it?")], "max_tokens": 2}

    def mutate(node, depth=0):
        if isinstance(node, dict) and node and rng.random() < 0.8:
            key = rng.choice(list(node))
            if rng.random() < 0.2:
                return {k: v for k, v in node.items() if k != key}
            return {**node, key: mutate(node[key], depth + 1) if depth < 4 else rng.choice(values)}
        if isinstance(node, list) and node and rng.random() < 0.8:
            index = rng.randrange(len(node))
            return node[:index] + [mutate(node[index], depth + 1)] + node[index + 1:]
        return rng.choice(values)

    for number in range(400):
        if number % 8 == 7:
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        else:
            body = mutate(base)
            if isinstance(body, dict) and isinstance(body.get("max_tokens"), int):
                body["max_tokens"] = min(max(body["max_tokens"], 1), 2) if body["max_tokens"] < 2**62 else 2**70
            raw = json.dumps(body).encode()
            if number % 8 == 3:
                raw = raw[: rng.randrange(len(raw))]
        status, text = request(tiny, raw=raw)
        assert 200 <= status < 500, (raw[:300], status, text[:300])
    assert request(tiny, path="/health")[0] == 200


def test_the_openai_client_chats_and_streams(tiny):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{tiny.server_port}/v1", api_key="unused", max_retries=0)
    messages = [user_message(data_url(random_image(5)))]
    reply = client.chat.completions.create(model="tiny", messages=messages, max_tokens=6)
    expected = json.loads(request(tiny, {"messages": messages, "max_tokens": 6})[1])["choices"][0]["message"]
    assert reply.choices[0].message.content == expected["content"] and reply.usage.completion_tokens == 6
    stream = list(client.chat.completions.create(model="tiny", messages=messages, max_tokens=6, stream=True,
                                                 stream_options={"include_usage": True}))
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == expected["content"]
    assert stream[-1].usage.completion_tokens == 6 and not stream[-1].choices
    assert [model.id for model in client.models.list()] == ["tiny"]


def test_lmms_eval_style_requests_are_answered_as_training_laid_them_out(tiny):
    """lmms-eval's openai_compatible sends the text part before the image parts, and its chat variant sends list
    content in system and assistant turns too: the images go first, as in training, so the answer is the same."""
    url = data_url(random_image(6))
    image_first = {"messages": [user_message(url, "What colour is it?")], "max_tokens": 6}
    text_first = {"messages": [
        {"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
        {"role": "user", "content": [{"type": "text", "text": "What colour is it?"},
                                     {"type": "image_url", "image_url": {"url": url}}]}], "max_tokens": 6}
    status, text = request(tiny, text_first)
    assert status == 200, text
    same_turn = {**text_first, "messages": text_first["messages"][:3] + image_first["messages"]}
    assert json.loads(text)["choices"] == json.loads(request(tiny, same_turn)[1])["choices"]


def test_lmms_eval_s_openai_model_evaluates_through_the_server(tiny, monkeypatch):
    """lmms-eval's own OpenAI-compatible model (`--model openai_compatible`, what a user points at this server) asks
    a task's questions with their images through the server; each answer is the server's own for that request."""
    models = pytest.importorskip("lmms_eval.models")
    from lmms_eval.api.instance import Instance

    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    lmm = models.get_model("openai_compatible", force_simple=True)(
        model="tiny", base_url=f"http://127.0.0.1:{tiny.server_port}/v1", max_retries=1, num_concurrent=2)
    docs = {index: {"image": random_image(20 + index), "question": question}
            for index, question in enumerate(("What shape is this?", "What colour is it?", "Is it round?"))}
    lmm.task_dict = {"shapes": {"test": docs}}
    requests = [Instance("generate_until", (doc["question"], {"max_new_tokens": 5, "temperature": 0},
                                            lambda doc: [doc["image"]], index, "shapes", "test"),
                         idx=0, metadata={"task": "shapes", "doc_id": index, "repeats": 1})
                for index, doc in docs.items()]
    answers = [getattr(result, "text", result) for result in lmm.generate_until(requests)]
    for answer, doc in zip(answers, docs.values()):
        message = user_message(data_url(doc["image"]), doc["question"])
        expected = json.loads(request(tiny, {"messages": [message], "max_tokens": 5})[1])
        assert answer == expected["choices"][0]["message"]["content"] and answer


def test_a_stream_sends_its_first_text_at_once_and_the_rest_at_most_every_interval(make_processor):
    """With an interval longer than the answer, a stream is its first text and then the rest, sent at the end (which
    does not wait for the interval); the text is the whole answer's."""
    server = start_with(make_processor, stream_interval_s=60.0)
    try:
        body = {"messages": [{"role": "user", "content": "Tell me about shapes."}], "max_tokens": 24}
        whole = json.loads(request(server, body)[1])["choices"][0]["message"]["content"]
        began = time.monotonic()
        status, text = request(server, {**body, "stream": True})
        contents = [chunk["choices"][0]["delta"]["content"] for chunk in events(text)
                    if chunk["choices"] and chunk["choices"][0]["delta"].get("content")]
        assert status == 200 and time.monotonic() - began < 30 and "".join(contents) == whole
        assert 1 <= len(contents) <= 2
    finally:
        stop(server)


def test_windows_and_limits_refuse_values_out_of_range(capsys):
    from serve import main

    for flag, value, message in [(flag, "-1", "must be 0 or more, got -1") for flag in (
            "--stream-interval-ms", "--prefill-window-ms", "--batch-window-ms", "--max-images")] + [
            ("--max-batch-size", "0", "must be 1 or more, got 0"), ("--timeout", "0", "must be more than 0, got 0"),
            ("--kv-cache-gib", "nan", "must be more than 0, got nan"), ("--max-waiting", "2.5",
                                                                        "must be an integer, got 2.5")]:
        with pytest.raises(SystemExit) as exit_info:
            main([flag, value])
        assert exit_info.value.code == 2 and f"{flag}: {message}" in capsys.readouterr().err


def test_the_load_test_drives_the_server_with_concurrent_clients(make_processor, tmp_path):
    import subprocess
    import sys

    config = tiny_config("embedding")
    model, processor = tiny_model(config, seed=1), make_processor(config)
    model.generation_config.eos_token_id = None  # fixed-length answers
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    output = tmp_path / "serve.jsonl"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "bench_serve.py"), "--model",
                             str(tmp_path / "model"), "--clients", "1,3", "--requests_per_client", "2",
                             "--max_tokens", "4", "--output", str(output), "--server_args=--fast", "--label", "fast"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    one, three = [json.loads(line) for line in output.read_text().splitlines()]
    assert (one["clients"], one["requests"], three["requests"]) == (1, 2, 6)
    assert one["failures"] == three["failures"] == {} and three["tokens_per_s"] > 0, result.stderr[-4000:]
    assert 0 < three["ttft_p50_s"] <= three["latency_p50_s"]
    generation = three["generation"]  # the server's /metrics over the run: 6 answers of 4 tokens, 3 rows at most
    assert 1 <= generation["rows_per_step"] <= 3 and 1 <= generation["requests_per_prefill"] <= 3
    assert set(generation["phase_share"]) == {"idle", "prefill", "launch", "gpu_wait", "tokens"}
    assert 0 < sum(generation["phase_share"].values()) <= 1.05
    lines = result.stdout.strip().splitlines()
    assert lines[-6].startswith("| fast | 3 | 6 | 0 |") and lines[-1].startswith("| fast | 3 |")  # two tables


def test_the_host_only_server_streams_text_without_the_model_s_decode_steps(make_processor, tmp_path):
    """benchmarks/serve_host_only.py: serve.py whose decode steps are free stand-ins, for measuring the host's own
    ceiling; its answers are ordinary text, so the streams do their real work."""
    import subprocess
    import sys

    config = tiny_config("embedding")
    tiny_model(config, seed=1).save_pretrained(tmp_path / "model")
    make_processor(config).save_pretrained(tmp_path / "model")
    output = tmp_path / "host.jsonl"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "bench_serve.py"), "--model",
                             str(tmp_path / "model"), "--serve_script", str(REPO_ROOT / "benchmarks" /
                                                                              "serve_host_only.py"),
                             "--clients", "4", "--requests_per_client", "2", "--max_tokens", "16", "--output",
                             str(output), "--server_args=--fast"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(output.read_text())
    assert record["failures"] == {} and record["tokens_per_s"] > 0 and record["ttft_p50_s"] > 0
    assert record["generation"]["rows_per_step"] >= 1


def test_a_request_whose_client_leaves_before_its_generation_is_dropped(make_processor):
    import socket

    server = start_with(make_processor, max_batch_size=1)
    entered, release, original, calls = threading.Event(), threading.Event(), server.queue.generate, []

    def held(**kwargs):
        calls.append(1)
        entered.set()
        release.wait(30)
        return original(**kwargs)

    server.queue.generate = held
    jobs, submit = [], server.queue.submit
    server.queue.submit = lambda job: jobs.append(job) or submit(job)
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    try:
        first = threading.Thread(target=lambda: request(server, raw=body.encode()))
        first.start()
        assert entered.wait(30)  # the generation thread holds the first request
        client = socket.create_connection(("127.0.0.1", server.server_port), timeout=30)
        client.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        deadline = time.monotonic() + 30
        while len(jobs) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        client.close()
        assert jobs[1].cancelled.wait(10)  # noticed while it waited in the queue
        release.set()
        first.join(30)
        assert jobs[1].done.wait(30) and isinstance(jobs[1].error, GenerationCancelled)
        assert calls == [1]  # the second request was never generated
    finally:
        release.set()
        stop(server)
