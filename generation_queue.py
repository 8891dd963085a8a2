"""The server's requests (`Job`), the bounded queue they wait in (`JobQueue`), and window batching for `generate`.

A `Job` is what serve.py hands over: a prompt, its options, and whether its tokens are streamed; the thread that
runs the generations finishes it with its tokens or an error. At most `max_waiting` jobs wait (`submit` raises
`QueueFull` beyond); a job whose client left is dropped if it is still waiting. `metrics()` counts what the queue
did (serve.py's GET /metrics).

`GenerationQueue` serves models the fast decoder does not run (continuous_batching.py serves the rest): requests
with the same sampling options that arrive within `window_s` of each other are generated as one left-padded batch of
`generate` of up to `max_batch_size` rows; streamed requests batch like the others (`RowStreamers` hands each row's
tokens to its own job and ends its stream at the row's end); requests with a seed run alone. All GPU work happens on
one thread, so a CUDA graph being captured never sees another request's copies.
"""

import collections
import queue
import threading
import time
from dataclasses import dataclass, field

import torch


@dataclass
class Metric:
    """One Prometheus metric: its values by label set ("" for none, else e.g. 'phase="idle"')."""

    name: str
    kind: str  # counter or gauge
    help: str
    values: dict[str, float]


class QueueFull(Exception):
    """More requests are waiting than the queue takes."""


class GenerationCancelled(Exception):
    """The request's client went away; its generation stopped."""


@dataclass
class Job:
    """One request: the processor's output for its prompt (CPU tensors), generate() options ("seed" included), and
    whether its new tokens are streamed (`stream()` yields them as they are chosen)."""

    inputs: dict
    options: dict
    streamed: bool = False
    tokens: list[int] | None = None
    error: Exception | None = None
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)  # its client left: drop or stop it
    pieces: queue.Queue = field(default_factory=queue.Queue)  # streamed token ids; None ends the stream
    stream_ended: bool = False
    queued_at: float = field(default_factory=time.monotonic)

    def batch_key(self) -> tuple | None:
        """Jobs with equal keys may share a batch of `generate` (their max_new_tokens may differ); None: this job
        runs alone."""
        if self.options.get("seed") is not None:
            return None
        return tuple(sorted((name, repr(value)) for name, value in self.options.items()
                            if name not in ("max_new_tokens", "tokenizer")))

    def emit(self, tokens: list[int]) -> None:
        if self.streamed and not self.stream_ended:
            self.pieces.put(tokens)

    def end_stream(self) -> None:
        if not self.stream_ended:
            self.stream_ended = True
            self.pieces.put(None)

    def finish(self, tokens: list[int] | None = None, error: Exception | None = None) -> None:
        self.tokens, self.error = tokens, error
        self.end_stream()
        self.done.set()

    def stream(self):
        """The new token ids in pieces as they are chosen, until the job's end. A piece holds every token that
        arrived since the last one, so a reader that falls behind wakes once for several tokens."""
        ended = False
        while not ended:
            piece = self.pieces.get()
            tokens = []
            while piece is not None:
                tokens += piece
                try:
                    piece = self.pieces.get_nowait()
                except queue.Empty:
                    break
            ended = piece is None
            if tokens:
                yield tokens

    def result(self) -> list[int]:
        """The new tokens, once generated (up to and including the end-of-sequence token)."""
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.tokens


class RowStreamers:
    """The streamer `generate` sees for a batch: each streamed row's tokens go to its job, whose stream ends at the
    row's own end (an end token, or its max_new_tokens) rather than the batch's. When every row's client has left,
    the generation stops."""

    def __init__(self, jobs: list[Job], end_ids: set[int]):
        self.jobs, self.end_ids = jobs, end_ids
        self.counts = [0] * len(jobs)

    def put(self, value: torch.Tensor) -> None:
        if value.dim() > 1:  # the first call holds the prompts
            return
        for row, (job, token) in enumerate(zip(self.jobs, value.tolist())):
            if job.stream_ended or job.cancelled.is_set():
                continue
            job.emit([token])
            self.counts[row] += 1
            if token in self.end_ids or self.counts[row] >= job.options["max_new_tokens"]:
                job.end_stream()
        if all(job.cancelled.is_set() for job in self.jobs):
            raise GenerationCancelled("every client of the batch closed its connection")

    def end(self) -> None:
        for job in self.jobs:
            job.end_stream()


class JobQueue:
    """Where serve.py submits jobs: at most `max_waiting` wait (`submit` raises QueueFull beyond), and a job whose
    client left before its generation began is answered GenerationCancelled, never run. A subclass runs the jobs on
    one thread of its own (`start`)."""

    def __init__(self, max_waiting: int, max_length: int | None):
        self.max_waiting, self.max_length = max_waiting, max_length  # max_length: prompt + new tokens at most
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.submit_lock = threading.Lock()
        self.submitted = self.refused = 0

    @property
    def waiting(self) -> int:
        return self.jobs.qsize()

    def submit(self, job: Job) -> Job:
        with self.submit_lock:
            if self.waiting >= self.max_waiting:
                self.refused += 1
                raise QueueFull(f"{self.waiting} requests are already waiting")
            self.jobs.put(job)
            self.submitted += 1
        return job

    def metrics(self) -> list[Metric]:
        return [Metric("nextgpt_requests_total", "counter", "requests queued for generation", {"": self.submitted}),
                Metric("nextgpt_requests_refused_total", "counter", "requests refused with 503: the queue was full",
                       {"": self.refused}),
                Metric("nextgpt_requests_waiting", "gauge", "requests queued, not yet generating", {"": self.waiting})]

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True, name="generation").start()

    def _run(self) -> None:
        raise NotImplementedError

    @staticmethod
    def _dropped(job: Job) -> bool:
        """A job whose client left before its generation began is answered with GenerationCancelled, not run."""
        if job.cancelled.is_set():
            job.finish(error=GenerationCancelled("the client closed the connection before generation began"))
        return job.cancelled.is_set()


def left_padded_batch(inputs: list[dict], pad_token_id: int) -> dict:
    """One batch from single-prompt processor outputs: prompts padded on the left, images, audio and videos in row
    order."""
    length = max(item["input_ids"].shape[1] for item in inputs)
    input_ids = torch.full((len(inputs), length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(inputs), length), dtype=torch.long)
    for row, item in enumerate(inputs):
        size = item["input_ids"].shape[1]
        input_ids[row, length - size:] = item["input_ids"][0]
        attention_mask[row, length - size:] = item["attention_mask"][0]
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    for name in ("pixel_values", "input_features", "pixel_values_videos"):  # images, audio, videos
        values = [item[name] for item in inputs if item.get(name) is not None]
        if values:
            batch[name] = torch.cat(values)
    return batch


class GenerationQueue(JobQueue):
    """Batches of `generate` formed from requests that arrive within a window (the path of models the fast decoder
    does not run; continuous_batching.py serves the others)."""

    def __init__(self, generate, device: torch.device, pad_token_id: int, end_ids: set[int], *,
                 max_batch_size: int = 8, window_s: float = 0.005, max_waiting: int = 64,
                 max_length: int | None = None):
        super().__init__(max_waiting, max_length)
        self.generate, self.device = generate, device
        self.pad_token_id, self.end_ids = pad_token_id, end_ids
        self.max_batch_size, self.window_s = max_batch_size, window_s
        self.deferred: collections.deque[Job] = collections.deque()  # seen while batching, not batchable with it
        self.batch_sizes: collections.Counter = collections.Counter()

    def metrics(self) -> list[Metric]:
        return super().metrics() + [Metric("nextgpt_batches_total", "counter", "batches of generate, by size",
                                           {f'size="{size}"': count for size, count in
                                            dict(self.batch_sizes).items()})]  # a copy: the thread adds sizes

    @property
    def waiting(self) -> int:
        return self.jobs.qsize() + len(self.deferred)

    def _run(self) -> None:
        while True:
            batch = [job for job in self._collect() if not self._dropped(job)]
            if batch:
                self._generate(batch)

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
            streamer = RowStreamers(batch, self.end_ids) if any(job.streamed for job in batch) else None
            with torch.no_grad():
                generated = self.generate(**{name: value.to(self.device) for name, value in inputs.items()},
                                          **options, streamer=streamer)
            self.batch_sizes[len(batch)] += 1
            rows = generated[:, inputs["input_ids"].shape[1]:].tolist()
        except Exception as error:  # reported to every request of the batch
            rows, failure = [None] * len(batch), error
        else:
            failure = None
        for job, row in zip(batch, rows):
            if job.cancelled.is_set():
                job.finish(error=GenerationCancelled("the client closed the connection"))
            elif failure is not None:
                job.finish(error=failure)
            else:
                job.finish(self._trim(row[: job.options["max_new_tokens"]]))

    def _trim(self, tokens: list[int]) -> list[int]:
        """Up to and including the first end token; without the padding of a row that a stop string ended early."""
        for index, token in enumerate(tokens):
            if token in self.end_ids:
                return tokens[: index + 1]
            if token == self.pad_token_id and all(rest == token for rest in tokens[index:]):
                return tokens[:index]
        return tokens


__all__ = ["GenerationCancelled", "GenerationQueue", "Job", "JobQueue", "Metric", "QueueFull", "RowStreamers",
           "left_padded_batch"]
