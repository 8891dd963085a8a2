"""Continuous (iteration-level) batching on the fast path: one thread runs every generation of the server.

A request joins the running batch at the next decode step (its prompt is prefilled into a free row of the fast
decoder's cache, fast_decoder.py) and leaves as soon as it ends, so a long answer never holds short ones back and a
new request never waits for a batch to drain. Each row keeps its own max_tokens, end tokens, stop strings,
temperature, top_p and seed (a random generator of its own, so a seeded answer does not depend on its neighbours).
A step runs the first rows up to the highest one in use (rounded up to a power of two: new requests take the lowest
free rows) and reads the cache slots in use (rounded up to CACHE_LENGTH_STEP); on CUDA each (rows, slots) pair is
replayed from a CUDA graph of its own, and so is each prefill of a group of requests, padded to a power of two of
prompts. A row whose client left is freed at the next step.
"""

import collections
import contextlib
import queue
import time
import traceback
from dataclasses import dataclass

import torch

try:
    from .fast_decoder import LlamaFamilyDecoder
    from .fast_generation import (CACHE_LENGTH_STEP, PROMPT_LENGTH_STEP, FastGenerator, choose_tokens,
                                  ends_with_stop_string, padded_cache_length, padded_count, padded_prompt_length)
    from .generation_queue import GenerationCancelled, Job, JobQueue, Metric, left_padded_batch
except ImportError:
    from fast_decoder import LlamaFamilyDecoder
    from fast_generation import (CACHE_LENGTH_STEP, PROMPT_LENGTH_STEP, FastGenerator, choose_tokens,
                                 ends_with_stop_string, padded_cache_length, padded_count, padded_prompt_length)
    from generation_queue import GenerationCancelled, Job, JobQueue, Metric, left_padded_batch

CPU_CACHE_BYTES = 2**30  # the KV cache's default size without a GPU; on one, half the memory free at start
# How long a new request may wait to share a prefill while every row decodes (`_prefill_due`): on an H100 serving a
# 7B model to 64 clients, 100 ms gave 11% more tokens/s than 0 with the same median time to first token
# (benchmarks/RESULTS.md, "Serving under load").
PREFILL_WINDOW_S = 0.1
# Prefill graphs of every group size are captured at start for prompts up to this many cache slots, later ones on
# first use: eager, a 7B prefill of 1 to 16 prompts of 128 slots is host-bound at 42-54 ms, graphed 8-47 ms
# (benchmarks/RESULTS.md, "Serving under load").
WARM_PROMPT_SLOTS = 256
# Where the generation thread's time goes (GET /metrics): waiting for requests, prefilling (until the first tokens
# are read), queuing decode steps, waiting for a step's tokens, handing tokens to their requests.
PHASES = ("idle", "prefill", "launch", "gpu_wait", "tokens")


@dataclass
class Row:
    """A request being generated in one row of the cache."""

    job: Job
    slots: int  # cache slots it fills: its padded prompt, then one per token fed back
    generator: torch.Generator | None  # its own, when the request has a seed
    tokens: list[int]


class ContinuousBatcher(JobQueue):
    def __init__(self, model, tokenizer, pad_token_id: int, end_ids: set[int], *, max_batch_size: int = 32,
                 max_waiting: int = 64, max_prefill_rows: int = 16, prefill_window_s: float = PREFILL_WINDOW_S,
                 cache_bytes: int | None = None, padded_prefills: bool | None = None):
        """`max_batch_size` rows decode together at most; up to `max_prefill_rows` waiting prompts join in one
        prefill, which, while other rows decode, waits until it is full or its first request has waited
        `prefill_window_s` (`_prefill_due`). The KV cache takes `cache_bytes` (default: half the GPU memory free
        now, or CPU_CACHE_BYTES), which sets the longest prompt + answer a request may have (`max_length`).
        `padded_prefills` (default: on CUDA) pads each prefill to a power of two of prompts, the added ones empty and
        written into a spare cache row, so that a few CUDA graphs serve every group size."""
        self.fast = FastGenerator(model)
        self.model, self.tokenizer, self.pad_token_id, self.end_ids = model, tokenizer, pad_token_id, end_ids
        self.max_prefill_rows, self.prefill_window_s = max_prefill_rows, prefill_window_s
        self.padded_prefills = model.device.type == "cuda" if padded_prefills is None else padded_prefills
        self.spare_row = max_batch_size  # the decoder's last row: no request's, steps never reach it
        cache_length = self._cache_length(max_batch_size, cache_bytes)  # the spare row comes on top
        self.decoder = LlamaFamilyDecoder(model.language_model, max_batch_size + 1, cache_length, self.fast.layer)
        # The longest prompt + answer whose left-padded prompt still leaves room for every new token.
        super().__init__(max_waiting, cache_length - (PROMPT_LENGTH_STEP - 1))
        device = model.device
        self.tokens = torch.zeros(max_batch_size, dtype=torch.long, device=device)  # each row's next input token
        self.positions = torch.zeros(max_batch_size, dtype=torch.long, device=device)  # ... and its position
        self.temperature = torch.zeros(max_batch_size, device=device)  # 0: greedy
        self.top_p = torch.ones(max_batch_size, device=device)
        self.rows: list[Row | None] = [None] * max_batch_size
        self.deferred: collections.deque[Job] = collections.deque()  # taken out, to join a later prefill
        self.steps_by_rows: dict[int, int] = {}  # decode steps by rows in use: how well requests shared steps
        self.phase_seconds = dict.fromkeys(PHASES, 0.0)
        self.prefilled = {"request": 0, "padding": 0}  # prompts prefilled
        self.prefills = self.generated = 0
        self.in_flight: tuple | None = None  # the last step's rows and tokens (on their way to the host)
        self.host_tokens = [torch.zeros(max_batch_size, dtype=torch.long, pin_memory=device.type == "cuda")
                            for _ in range(2)]

    def _cache_length(self, rows: int, cache_bytes: int | None) -> int:
        config = self.model.language_model.config
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        itemsize = self.model.language_model.dtype.itemsize
        slot_bytes = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * itemsize  # keys, values
        if cache_bytes is None:
            cache_bytes = (torch.cuda.mem_get_info(self.model.device)[0] // 2 if self.model.device.type == "cuda"
                           else CPU_CACHE_BYTES)
        affordable = cache_bytes // (rows * slot_bytes) // CACHE_LENGTH_STEP * CACHE_LENGTH_STEP
        if affordable < CACHE_LENGTH_STEP:
            raise ValueError(f"a KV cache of {cache_bytes / 2**30:.2f} GiB holds fewer than {CACHE_LENGTH_STEP} "
                             f"positions for each of {rows} rows; lower --max-batch-size or give the cache more")
        context = self.model.config.context_length or affordable
        return min(affordable, padded_prompt_length(context))

    def warm_up(self) -> None:
        """Captures the decode step of every (rows, slots) pair a step may take and, with padded prefills, the
        prefill of every group size for prompts up to WARM_PROMPT_SLOTS (into the spare row), before the first
        request rather than during one (each costs up to seconds on a 7B model)."""
        rows = sorted({min(padded_count(count), len(self.rows)) for count in range(1, len(self.rows) + 1)})
        groups = sorted({padded_count(count) for count in range(1, self.max_prefill_rows + 1)})
        hidden, device = self.model.language_model.config.hidden_size, self.model.device
        with torch.no_grad():
            for count in rows:
                for length in range(CACHE_LENGTH_STEP, self.cache_length + 1, CACHE_LENGTH_STEP):
                    self.decoder.step(self.tokens[:count], self.positions[:count], length)
            for count in groups if self.padded_prefills else []:
                for length in range(PROMPT_LENGTH_STEP, min(WARM_PROMPT_SLOTS, self.cache_length) + 1,
                                    PROMPT_LENGTH_STEP):
                    embeds = torch.zeros(count, length, hidden, dtype=self.model.language_model.dtype, device=device)
                    positions = torch.arange(length, device=device).expand(count, length)
                    spare = torch.full((count,), self.spare_row, device=device)
                    self.decoder.prefill(embeds, torch.ones_like(positions), positions, spare)
        for index in range(len(self.rows)):
            self.decoder.release(index)

    @property
    def cache_length(self) -> int:
        return self.decoder.cache_length

    def _run(self) -> None:
        while True:
            decoding = any(self.rows)
            if not decoding or self._prefill_due():
                self._admit(wait=not decoding)
            if any(self.rows):
                self._step()

    def _prefill_due(self) -> bool:
        """Whether waiting requests should be prefilled now, while other rows decode: when they fill a prefill, or
        the first of them has waited its window: `prefill_window_s` times the share of rows decoding. Every prefill
        stops the decoding rows for the tower's and the LLM's work and launches, so under load requests arriving one by
        one are cheaper gathered into fewer, fuller prefills, and the more rows a prefill stalls, the longer a new
        request may wait to share one; at an idle batcher it never waits."""
        if self.deferred:
            return True
        with self.jobs.mutex:
            if not self.jobs.queue:
                return False
            count, first_queued = len(self.jobs.queue), self.jobs.queue[0].queued_at
        free = self.rows.count(None)
        window = self.prefill_window_s * (len(self.rows) - free) / len(self.rows)
        return count >= min(free, self.max_prefill_rows) or time.monotonic() - first_queued >= window

    @property
    def waiting(self) -> int:
        return self.jobs.qsize() + len(self.deferred)

    @contextlib.contextmanager
    def _timed(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phase_seconds[phase] += time.perf_counter() - start

    def metrics(self) -> list[Metric]:
        steps_by_rows, phase_seconds = dict(self.steps_by_rows), dict(self.phase_seconds)  # copies: the thread goes on
        return super().metrics() + [
            Metric("nextgpt_generation_seconds_total", "counter", "the generation thread's time by phase: waiting for "
                   "requests (idle), prefilling until the first tokens are read (prefill), queuing decode steps "
                   "(launch), waiting for a step's tokens (gpu_wait), handing tokens to requests (tokens)",
                   {f'phase="{phase}"': seconds for phase, seconds in phase_seconds.items()}),
            Metric("nextgpt_prefills_total", "counter", "prefills, each of a group of requests", {"": self.prefills}),
            Metric("nextgpt_prefill_prompts_total", "counter", "prompts prefilled: requests' and the empty ones "
                   "padding a group to a power of two", {f'kind="{kind}"': count for kind, count in
                                                         self.prefilled.items()}),
            Metric("nextgpt_decode_steps_total", "counter", "decode steps", {"": sum(steps_by_rows.values())}),
            Metric("nextgpt_decode_rows_total", "counter", "rows in use summed over decode steps (over the steps: "
                   "the mean batch)", {"": sum(rows * steps for rows, steps in steps_by_rows.items())}),
            Metric("nextgpt_generated_tokens_total", "counter", "tokens generated", {"": self.generated}),
            Metric("nextgpt_rows_in_use", "gauge", "requests being generated", {"": len(self.rows) -
                                                                                 self.rows.count(None)})]

    def _admit(self, wait: bool) -> None:
        """Prefills waiting requests into free rows (waiting for one when nothing is being generated). The prompts
        of one prefill are padded to the longest; a request that would then not fit the cache waits for the next."""
        free = [index for index, row in enumerate(self.rows) if row is None]
        jobs, later = [], []
        while free and len(jobs) < min(len(free), self.max_prefill_rows):
            try:
                with self._timed("idle"):
                    job = self.deferred.popleft() if self.deferred else self.jobs.get(block=wait and not jobs)
            except queue.Empty:
                break
            if self._dropped(job):
                continue
            try:  # serve.py checks this before queueing; other callers learn it here
                self.model.config.check_fits(job.inputs["input_ids"].shape[1], job.options["max_new_tokens"],
                                             limit=self.max_length)
            except ValueError as error:
                job.finish(error=error)
                continue
            slots = padded_prompt_length(max(item.inputs["input_ids"].shape[1] for item in jobs + [job]))
            if all(slots + item.options["max_new_tokens"] - 1 <= self.cache_length for item in jobs + [job]):
                jobs.append(job)
            else:
                later.append(job)
        self.deferred.extendleft(reversed(later))
        if jobs:
            with self._timed("prefill"):
                self._prefill(jobs, free[: len(jobs)])

    def _prefill(self, jobs: list[Job], rows: list[int]) -> None:
        try:
            batch = left_padded_batch([job.inputs for job in jobs], self.pad_token_id)
            batch = {name: value.to(self.model.device) for name, value in batch.items()}
            targets = torch.tensor(rows, device=self.model.device)
            input_ids, prompt_mask, written = batch["input_ids"], batch["attention_mask"], targets
            extra = padded_count(len(jobs)) - len(jobs) if self.padded_prefills else 0
            if extra:  # empty prompts (no media, all masked) into the spare row
                input_ids = torch.nn.functional.pad(input_ids, (0, 0, 0, extra), value=self.pad_token_id)
                prompt_mask = torch.nn.functional.pad(prompt_mask, (0, 0, 0, extra))
                written = torch.nn.functional.pad(targets, (0, extra), value=self.spare_row)
            with torch.no_grad():
                logits, last_positions = self.fast.prefill(self.decoder, input_ids, prompt_mask,
                                                           pixel_values=batch.get("pixel_values"),
                                                           input_features=batch.get("input_features"),
                                                           pixel_values_videos=batch.get("pixel_values_videos"),
                                                           rows=written)
            logits, last_positions = logits[: len(jobs)], last_positions[: len(jobs)]
            self.prefills += 1
            self.prefilled["request"] += len(jobs)
            self.prefilled["padding"] += extra
            for index, job in zip(rows, jobs):
                self._start_row(index, job, slots=padded_prompt_length(batch["input_ids"].shape[1]))
            self.positions[targets] = last_positions + 1
            first = self._choose(logits, rows)
            self.tokens[targets] = first
            for index, token in zip(rows, first.tolist()):
                self._accept(index, token)
        except Exception as error:  # reported to these requests (and to the server's log); the others go on
            traceback.print_exc()
            for index, job in zip(rows, jobs):
                if self.rows[index] is not None and self.rows[index].job is job:
                    self._free(index)
                if not job.done.is_set():
                    job.finish(error=error)

    def _start_row(self, index: int, job: Job, slots: int) -> None:
        options = job.options
        seed = options.get("seed")
        generator = None
        if seed is not None:
            generator = torch.Generator(self.model.device)
            generator.manual_seed(seed)
        self.rows[index] = Row(job, slots, generator, [])
        self.temperature[index] = options.get("temperature", 1.0) if options.get("do_sample") else 0.0
        self.top_p[index] = options.get("top_p", 1.0) if options.get("do_sample") else 1.0

    def _choose(self, logits: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """The next token of each row in `rows` (logits in that order), by the row's own options."""
        live = [(position, self.rows[index]) for position, index in enumerate(rows) if self.rows[index] is not None]
        sampled = [row.job.options.get("do_sample") for _, row in live]
        if not any(sampled):
            return logits.argmax(-1)
        noise = torch.empty_like(logits).exponential_()
        for position, row in live:
            if row.generator is not None:
                noise[position].exponential_(generator=row.generator)
        indices = torch.tensor(rows, device=logits.device)
        nucleus = any(row.job.options.get("top_p", 1.0) < 1.0 for _, row in live)
        return choose_tokens(logits, self.temperature[indices], self.top_p[indices] if nucleus else None, noise)

    def _step(self) -> None:
        """Queues one decode step of every row in use on the GPU, then handles the previous step's tokens while it
        runs, so the host's work (streaming, end checks) overlaps the GPU's. A row that ended in the previous step
        has thus decoded one token more, which nobody sees."""
        live = [(index, row) for index, row in enumerate(self.rows) if row is not None]
        count = min(padded_count(live[-1][0] + 1), len(self.rows))
        slots = max(row.slots for _, row in live) + 1
        length = min(padded_cache_length(slots), self.cache_length)
        try:
            with torch.no_grad(), self._timed("launch"):
                logits = self.decoder.step(self.tokens[:count], self.positions[:count], length)
                chosen = self._choose(logits, list(range(count)))
                self.tokens[:count] = chosen
                self.positions[:count] += 1
                ready = None
                if chosen.is_cuda:  # copied to pinned memory without waiting; the other buffer holds the last step's
                    self.host_tokens.reverse()
                    chosen = self.host_tokens[0][:count].copy_(chosen, non_blocking=True)
                    ready = torch.cuda.Event()
                    ready.record()
        except Exception as error:  # e.g. out of memory: every request being generated gets it
            traceback.print_exc()
            for index, row in live:
                self._free(index)
                row.job.finish(error=error)
            self.in_flight = None
            return
        for _, row in live:
            row.slots += 1
        self.steps_by_rows[len(live)] = self.steps_by_rows.get(len(live), 0) + 1
        self._take_tokens()
        self.in_flight = (live, chosen, ready)

    def _take_tokens(self) -> None:
        """Hands the tokens of the step in flight to their rows (those still held by the same request)."""
        if self.in_flight is None:
            return
        live, chosen, ready = self.in_flight
        self.in_flight = None
        with self._timed("gpu_wait"):
            if ready is not None:
                ready.synchronize()
            tokens = chosen.tolist()
        with self._timed("tokens"):
            for index, row in live:
                if self.rows[index] is row:
                    self._accept(index, tokens[index])

    def _accept(self, index: int, token: int) -> None:
        """A row's new token: streamed, then the row ends at an end token, its max_tokens, a stop string, or when
        its client has left."""
        row = self.rows[index]
        job, options = row.job, row.job.options
        if job.cancelled.is_set():
            self._free(index)
            job.finish(error=GenerationCancelled("the client closed the connection"))
            return
        row.tokens.append(token)
        self.generated += 1
        job.emit([token])
        stops = options.get("stop_strings")
        if (token in self.end_ids or len(row.tokens) >= options["max_new_tokens"]
                or stops and ends_with_stop_string(row.tokens, stops, self.tokenizer)):
            self._free(index)
            job.finish(row.tokens)

    def _free(self, index: int) -> None:
        self.rows[index] = None
        self.decoder.release(index)


__all__ = ["ContinuousBatcher"]
