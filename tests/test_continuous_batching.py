"""continuous_batching.py on CPU: requests that join and leave a running batch get exactly the tokens they get alone.

The batcher is driven step by step here (`_admit`, `_step`) so that who joins when is certain; the server test at
the end runs it on its own thread.
"""

import json

import pytest

from conftest import random_image, tiny_config, tiny_model
from continuous_batching import ContinuousBatcher
from generation_queue import GenerationCancelled, Job


@pytest.fixture
def setup(make_processor):
    config = tiny_config("patches")
    model, processor = tiny_model(config, seed=3), make_processor(config)
    model.generation_config.eos_token_id = None
    return model, processor


def job_for(processor, question: str, image_seed: int | None = None, streamed: bool = False, **options) -> Job:
    content = question if image_seed is None else f"<image>\n{question}"
    prompt = processor.render([{"role": "user", "content": content}], add_generation_prompt=True)
    images = None if image_seed is None else [random_image(image_seed)]
    inputs = dict(processor(text=prompt, images=images, return_tensors="pt"))
    return Job(inputs, {"max_new_tokens": 8, **options}, streamed)


def alone(model, job: Job) -> list[int]:
    """What plain `generate` gives this request by itself (greedy)."""
    inputs = job.inputs
    generated = model.generate(**inputs, max_new_tokens=job.options["max_new_tokens"], do_sample=False)
    return generated[0, inputs["input_ids"].shape[1]:].tolist()


def batcher_for(model, processor, **kwargs) -> ContinuousBatcher:
    return ContinuousBatcher(model, processor.tokenizer, pad_token_id=0, end_ids=set(), cache_bytes=2**19, **kwargs)


def run_until_done(batcher: ContinuousBatcher, jobs: list[Job], steps: int = 200) -> None:
    for _ in range(steps):
        if all(job.done.is_set() for job in jobs):
            return
        batcher._admit(wait=False)
        if any(batcher.rows):
            batcher._step()
    raise AssertionError(f"the jobs did not finish: {[(job.done.is_set(), job.error) for job in jobs]}, "
                         f"rows {[row and len(row.tokens) for row in batcher.rows]}, {batcher.waiting} waiting")


@pytest.mark.parametrize("padded_prefills", [False, True])
def test_requests_joining_and_leaving_a_running_batch_get_their_own_tokens(setup, padded_prefills):
    """Padded prefills (CUDA's default) add empty prompts up to a power of two, written into the spare row."""
    model, processor = setup
    batcher = batcher_for(model, processor, max_batch_size=4, padded_prefills=padded_prefills)
    batcher.warm_up()  # every step shape once, then the batcher is as new
    first = [job_for(processor, "What shape is this?", 1, max_new_tokens=12),
             job_for(processor, "Colour?", 2, max_new_tokens=3),
             job_for(processor, "Is there a blue object in the image, and what colour is the background?", 3)]
    for job in first:
        batcher.submit(job)
    batcher._admit(wait=False)
    assert [row is not None for row in batcher.rows] == [True, True, True, False]
    for _ in range(3):
        batcher._step()
    assert first[1].done.is_set() and batcher.rows[1] is None  # it left after its 3 tokens; the others go on
    later = [job_for(processor, "A question without an image, a longer one than the others?", max_new_tokens=10),
             job_for(processor, "Which shape?", 4, max_new_tokens=9)]
    for job in later:  # they take the freed row 1 and row 3, mid-way through the others
        batcher.submit(job)
    run_until_done(batcher, first + later)
    for job in first + later:
        assert job.result() == alone(model, job)
    assert max(batcher.steps_by_rows) == 4 and all(row is None for row in batcher.rows)
    assert batcher.prefilled == {"request": 5, "padding": 1 if padded_prefills else 0}  # 3 prompts padded to 4


def test_under_load_a_prefill_waits_to_be_full_or_for_its_window(setup):
    """While rows decode, one new request waits (each prefill stalls the decoding rows) until enough arrive to fill a
    prefill (`max_prefill_rows`, or the free rows) or the first has waited the window, scaled by the share of rows
    decoding; their tokens are unchanged."""
    model, processor = setup
    batcher = batcher_for(model, processor, max_batch_size=4, max_prefill_rows=2, prefill_window_s=60.0)
    running = job_for(processor, "What shape is this?", 1, max_new_tokens=12)
    batcher.submit(running)
    batcher._admit(wait=True)  # an idle batcher takes a request at once
    batcher._step()
    second = batcher.submit(job_for(processor, "Colour?", 2, max_new_tokens=5))
    assert not batcher._prefill_due()  # one of the two a prefill takes, and its window is young
    second.queued_at -= 16.0  # one row of four decodes: the window is a quarter of 60 s
    assert batcher._prefill_due()
    second.queued_at += 16.0
    third = batcher.submit(job_for(processor, "Which shape?", 3, max_new_tokens=4))
    assert batcher._prefill_due()  # two waiting fill a prefill
    batcher._admit(wait=False)
    assert [row is not None for row in batcher.rows] == [True, True, True, False] and batcher.waiting == 0
    fourth = batcher.submit(job_for(processor, "Is it blue?", 4, max_new_tokens=3))
    assert batcher._prefill_due()  # it fills the one free row
    run_until_done(batcher, [running, second, third, fourth])
    for job in (running, second, third, fourth):
        assert job.result() == alone(model, job)


def test_each_row_keeps_its_own_sampling_seed_stop_string_and_end_token(setup):
    model, processor = setup
    greedy = job_for(processor, "What shape is this?", 1, max_new_tokens=10)
    free_tokens = alone(model, greedy)
    end_token = free_tokens[4]
    stop = processor.tokenizer.decode(free_tokens[:3])[-2:]

    def requests():
        return [job_for(processor, "What shape is this?", 1, max_new_tokens=10),
                job_for(processor, "Colour?", 2, max_new_tokens=10, do_sample=True, temperature=0.9, top_p=0.8,
                        seed=11),
                job_for(processor, "What shape is this?", 1, max_new_tokens=10, stop_strings=[stop]),
                job_for(processor, "Another question?", 3, max_new_tokens=10, do_sample=True, temperature=1.2)]

    batcher = ContinuousBatcher(model, processor.tokenizer, pad_token_id=0, end_ids={end_token}, cache_bytes=2**19,
                                max_batch_size=4)
    together = requests()
    for job in together:
        batcher.submit(job)
    run_until_done(batcher, together)
    assert together[0].result() == free_tokens[:5]  # ended at its end token
    stopped = together[2].result()
    assert stop in processor.tokenizer.decode(stopped) and stopped == free_tokens[: len(stopped)]
    assert len(stopped) < 5
    # The seeded request gives the same tokens alone as beside other (sampled and greedy) requests.
    seeded = requests()[1]
    batcher.submit(seeded)
    run_until_done(batcher, [seeded])
    assert seeded.result() == together[1].result()
    assert seeded.result() != alone(model, seeded)[: len(seeded.result())]  # it was sampled, not greedy


def test_a_request_whose_client_left_is_stopped_at_its_next_token(setup):
    model, processor = setup
    batcher = batcher_for(model, processor, max_batch_size=2)
    staying, leaving = (job_for(processor, "What shape is this?", 1, streamed=True, max_new_tokens=10),
                        job_for(processor, "Colour?", 2, streamed=True, max_new_tokens=10))
    batcher.submit(staying)
    batcher.submit(leaving)
    batcher._admit(wait=False)
    batcher._step()
    leaving.cancelled.set()
    batcher._step()
    assert leaving.done.is_set() and isinstance(leaving.error, GenerationCancelled) and batcher.rows[1] is None
    assert list(leaving.stream()) == [alone(model, leaving)[:1]]  # what came before it left
    run_until_done(batcher, [staying])
    assert [token for piece in staying.stream() for token in piece] == staying.result() == alone(model, staying)


def test_prompts_padded_past_the_cache_wait_for_a_prefill_of_their_own(setup):
    model, processor = setup
    batcher = batcher_for(model, processor, max_batch_size=4)
    long_prompt = job_for(processor, "word " * 300, max_new_tokens=4)
    long_answer = job_for(processor, "Colour?", max_new_tokens=batcher.max_length - 40)
    too_long = job_for(processor, "Colour?", max_new_tokens=batcher.max_length)
    assert batcher.cache_length == 512
    for job in (long_prompt, long_answer, too_long):
        batcher.submit(job)
    batcher._admit(wait=False)
    assert batcher.rows[1] is None and batcher.waiting == 1  # beside the long prompt it would not fit
    with pytest.raises(ValueError, match="past the 481 positions available"):
        too_long.result()
    run_until_done(batcher, [long_prompt, long_answer], steps=1000)
    assert long_prompt.result() == alone(model, long_prompt)
    assert long_answer.result() == alone(model, long_answer)


def test_the_server_batches_continuously_and_refuses_what_its_cache_cannot_hold(setup):
    from concurrent.futures import ThreadPoolExecutor

    from test_serve import request, start, streamed_text

    model, processor = setup
    server = start(model, processor, fast=True, cache_bytes=2**19, max_batch_size=4)
    try:
        bodies = [{"messages": [{"role": "user", "content": question}], "max_tokens": tokens}
                  for question, tokens in (("hi", 5), ("What shape is this picture showing?", 9), ("Colour?", 3),
                                           ("Is it a circle?", 7), ("And a square?", 6), ("Red?", 4))]
        one_by_one = [json.loads(request(server, body)[1])["choices"][0] for body in bodies]
        with ThreadPoolExecutor(6) as pool:
            whole = list(pool.map(lambda body: json.loads(request(server, body)[1])["choices"][0], bodies))
            streamed = list(pool.map(lambda body: streamed_text(request(server, {**body, "stream": True})[1]), bodies))
        assert whole == one_by_one
        assert streamed == [(choice["message"]["content"], choice["finish_reason"]) for choice in one_by_one]
        assert max(server.queue.steps_by_rows) > 1
        status, text = request(server, path="/metrics")
        names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
        values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if not line.startswith("#")}
        assert status == 200 and names == {name.split("{")[0] for name in values}  # every value described
        assert values["nextgpt_requests_total"] == values['nextgpt_prefill_prompts_total{kind="request"}'] == 18
        assert values["nextgpt_generated_tokens_total"] == 3 * 34 and values["nextgpt_rows_in_use"] == 0
        assert values["nextgpt_decode_rows_total"] > values["nextgpt_decode_steps_total"] > 0  # rows shared steps
        assert all(values[f'nextgpt_generation_seconds_total{{phase="{phase}"}}'] > 0 for phase in
                   ("idle", "prefill", "launch", "gpu_wait", "tokens"))
        status, text = request(server, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 500})
        assert status == 400 and "past the 481 positions available" in json.loads(text)["error"]["message"]
    finally:
        server.shutdown()
        server.server_close()


def test_a_whole_answer_whose_client_leaves_mid_generation_is_stopped(setup):
    import socket
    import time

    from test_serve import start

    model, processor = setup
    server = start(model, processor, fast=True, cache_bytes=2**19, max_batch_size=1)
    jobs, submit = [], server.queue.submit
    server.queue.submit = lambda job: jobs.append(job) or submit(job)
    try:
        body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1900})
        client = socket.create_connection(("127.0.0.1", server.server_port), timeout=30)
        client.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        deadline = time.monotonic() + 30
        while server.queue.rows[0] is None and time.monotonic() < deadline:  # until its generation has begun
            time.sleep(0.005)
        client.close()
        assert jobs[0].done.wait(30) and isinstance(jobs[0].error, GenerationCancelled)
        assert sum(server.queue.steps_by_rows.values()) < 1800 and server.queue.rows[0] is None
    finally:
        server.shutdown()
        server.server_close()
