"""One thread that runs every generation of the server, batching requests that arrive together (used by serve.py).

Requests with the same sampling options that arrive within `window_s` of each other are generated as one
left-padded batch of up to `max_batch_size` rows: on a GPU a batch costs little more than one row (the 7B shapes of
benchmarks/RESULTS.md decode 183 tokens/s at batch 1 and 1125 in all at batch 8). Streamed requests batch like the
others (`RowStreamers` hands each row's tokens to its own request's streamer and ends it at the row's end); requests
with a seed run alone. All GPU work happens on this thread, so a CUDA graph being captured never sees another
request's copies.
At most `max_waiting` requests wait (`submit` raises `QueueFull` beyond), and a streamed request whose client has gone
is cancelled at its next token (`CancellableStreamer`).
"""

import collections
import queue
import threading
import time
from dataclasses import dataclass, field

import torch
from transformers import TextIteratorStreamer


class QueueFull(Exception):
    """More requests are waiting than the queue takes."""


class GenerationCancelled(Exception):
    """The request's client went away; its generation stopped."""


class CancellableStreamer(TextIteratorStreamer):
    """A text streamer whose `cancel()` stops the generation feeding it at its next token."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()

    def put(self, value) -> None:
        if self.cancelled.is_set():
            raise GenerationCancelled("the client closed the connection")
        super().put(value)


class RowStreamers:
    """The streamer `generate` sees for a batch: each row's tokens go to that row's job's streamer, which ends at the
    row's own end (an end token, or its max_new_tokens) rather than the batch's. A row whose client left stops
    receiving; when every row's client has left, the generation stops."""

    def __init__(self, jobs: list["Job"], end_ids: set[int]):
        self.jobs, self.end_ids = jobs, end_ids
        self.counts = [0] * len(jobs)
        self.open = [job.streamer is not None for job in jobs]
        self.cancelled = [False] * len(jobs)

    def put(self, value: torch.Tensor) -> None:
        prompt = value.dim() > 1  # the first call holds the prompts, which the row streamers skip
        for row, job in enumerate(self.jobs):
            if not self.open[row]:
                continue
            try:
                job.streamer.put(value[row:row + 1])
            except GenerationCancelled:
                self.open[row], self.cancelled[row] = False, True
                continue
            if not prompt:
                self.counts[row] += 1
                if int(value[row]) in self.end_ids or self.counts[row] >= job.options["max_new_tokens"]:
                    self.open[row] = False
                    job.streamer.end()
        if all(self.cancelled):
            raise GenerationCancelled("every client of the batch closed its connection")

    def end(self) -> None:
        for row, job in enumerate(self.jobs):
            if self.open[row]:
                self.open[row] = False
                job.streamer.end()


@dataclass
class Job:
    """One request: the processor's output for its prompt (CPU tensors) and generate() options ("seed" included)."""

    inputs: dict
    options: dict
    streamer: object = None
    tokens: list[int] | None = None
    error: Exception | None = None
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)  # its client left: drop it if not started

    def batch_key(self) -> tuple | None:
        """Jobs with equal keys may share a batch (their max_new_tokens may differ); None: this job runs alone."""
        if self.options.get("seed") is not None:
            return None
        return tuple(sorted((name, repr(value)) for name, value in self.options.items()
                            if name not in ("max_new_tokens", "tokenizer")))

    def result(self) -> list[int]:
        """The new tokens, once generated (up to and including the end-of-sequence token)."""
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.tokens


def left_padded_batch(inputs: list[dict], pad_token_id: int) -> dict:
    """One batch from single-prompt processor outputs: prompts padded on the left, images in row order."""
    length = max(item["input_ids"].shape[1] for item in inputs)
    input_ids = torch.full((len(inputs), length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(inputs), length), dtype=torch.long)
    for row, item in enumerate(inputs):
        size = item["input_ids"].shape[1]
        input_ids[row, length - size:] = item["input_ids"][0]
        attention_mask[row, length - size:] = item["attention_mask"][0]
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    pixel_values = [item["pixel_values"] for item in inputs if item.get("pixel_values") is not None]
    if pixel_values:
        batch["pixel_values"] = torch.cat(pixel_values)
    return batch


class GenerationQueue:
    def __init__(self, generate, device: torch.device, pad_token_id: int, end_ids: set[int], *,
                 max_batch_size: int = 8, window_s: float = 0.005, max_waiting: int = 64):
        self.generate, self.device = generate, device
        self.pad_token_id, self.end_ids = pad_token_id, end_ids
        self.max_batch_size, self.window_s, self.max_waiting = max_batch_size, window_s, max_waiting
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.deferred: collections.deque[Job] = collections.deque()  # seen while batching, not batchable with it
        self.batch_sizes: collections.Counter = collections.Counter()
        self.submit_lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True, name="generation").start()

    @property
    def waiting(self) -> int:
        return self.jobs.qsize() + len(self.deferred)

    def submit(self, job: Job) -> Job:
        with self.submit_lock:
            if self.waiting >= self.max_waiting:
                raise QueueFull(f"{self.waiting} requests are already waiting")
            self.jobs.put(job)
        return job

    def _run(self) -> None:
        while True:
            batch = [job for job in self._collect() if not self._dropped(job)]
            if batch:
                self._generate(batch)

    @staticmethod
    def _dropped(job: Job) -> bool:
        """A job whose client left before its generation began is answered with GenerationCancelled, not run."""
        if job.cancelled.is_set():
            job.error = GenerationCancelled("the client closed the connection before generation began")
            job.done.set()
        return job.cancelled.is_set()

    def _collect(self) -> list[Job]:
        """The next job and, within the window, later jobs that may share its batch."""
        first = self.deferred.popleft() if self.deferred else self.jobs.get()
        batch, key = [first], first.batch_key()
        deadline = time.monotonic() + self.window_s
        while key is not None and len(batch) < self.max_batch_size:
            try:
                job = self.jobs.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                break
            (batch if job.batch_key() == key else self.deferred).append(job)
        return batch

    def _generate(self, batch: list[Job]) -> None:
        try:
            inputs = left_padded_batch([job.inputs for job in batch], self.pad_token_id)
            options = {**batch[0].options, "max_new_tokens": max(job.options["max_new_tokens"] for job in batch)}
            seed = options.pop("seed", None)
            if seed is not None:
                torch.manual_seed(seed)
            streamer = RowStreamers(batch, self.end_ids) if any(job.streamer for job in batch) else None
            with torch.no_grad():
                generated = self.generate(**{name: value.to(self.device) for name, value in inputs.items()},
                                          **options, streamer=streamer)
            self.batch_sizes[len(batch)] += 1
            for job, row in zip(batch, generated[:, inputs["input_ids"].shape[1]:].tolist()):
                job.tokens = self._trim(row[: job.options["max_new_tokens"]])
        except Exception as error:  # reported to every request of the batch
            for job in batch:
                job.error = error
                if job.streamer is not None:
                    job.streamer.end()
        finally:
            for job in batch:
                job.done.set()

    def _trim(self, tokens: list[int]) -> list[int]:
        """Up to and including the first end token; without the padding of a row that a stop string ended early."""
        for index, token in enumerate(tokens):
            if token in self.end_ids:
                return tokens[: index + 1]
            if token == self.pad_token_id and all(rest == token for rest in tokens[index:]):
                return tokens[:index]
        return tokens


__all__ = ["CancellableStreamer", "GenerationCancelled", "GenerationQueue", "Job", "QueueFull", "RowStreamers",
           "left_padded_batch"]
