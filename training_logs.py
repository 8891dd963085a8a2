"""The Trainer's log entries: what each holds beyond the Trainer's own, and logging steps that do not wait for the GPU.

Every entry gets `elapsed_s` (seconds since training began, for throughput between any two steps; none before) and,
on CUDA, this process's peak GPU memory since the previous entry (allocated by tensors, and reserved by the caching
allocator: what the card must hold) and the caching allocator's retries so far (each retry frees every cached block
and waits for the GPU: a stalled step).

At each logging step the transformers Trainer reads the loss, the gradient norm and the step's floating-point operations
off the GPU, which stops the host until the GPU has finished the step; the host then prepares the next step (the batch,
the model's Python work before its first kernels) while the GPU sits idle. With one micro-batch a step, as under DDP at
a small global batch, logging every step (bench_train.py's loss curves) cost 4 GPUs 9% of their throughput (205 against
226 sequences/s on H200s, benchmarks/RESULTS.md). With `deferred_logging` the loss and gradient norm are copied to the
host as the GPU gets to them and logged at the next logging step, under the step they belong to and with `elapsed_s` the
time the GPU finished it (a CUDA event's): the same log history, callbacks and final loss. A step that evaluates, saves
or ends training logs at once, so checkpoints and final metrics hold every entry; the floating-point operations are
added up at those steps only (to the same total).
"""

import time
from typing import NamedTuple

import torch
from transformers import Trainer
from transformers.trainer_pt_utils import nested_gather


class StepClock:
    """When the GPU got to points of its work, on the host's clock (seconds since the clock started): an event marks
    a point and, once the GPU has passed it, gives its time; without CUDA a point's time is the host's when marked."""

    def __init__(self, device: torch.device):
        self.began = time.perf_counter()
        self.origin = None
        if device.type == "cuda":  # an event the GPU passes while the host reads its clock: the two clocks' offset
            torch.cuda.synchronize(device)
            self.origin = torch.cuda.Event(enable_timing=True)
            self.origin.record()
            self.origin.synchronize()
            self.origin_seconds = time.perf_counter() - self.began

    def now(self) -> float:
        return time.perf_counter() - self.began

    def mark(self) -> torch.cuda.Event | float:
        if self.origin is None:
            return self.now()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds(self, mark: torch.cuda.Event | float) -> float:
        if isinstance(mark, float):
            return mark
        mark.synchronize()
        return self.origin_seconds + self.origin.elapsed_time(mark) / 1e3


class PendingLog(NamedTuple):
    step: int
    epoch: float | None
    steps_since_last: int  # the logged loss is the mean over these steps
    learning_rate: float
    has_grad_norm: bool
    values: torch.Tensor  # (loss summed over the steps, gradient norm or 0), float64, on the host when `done` is past
    done: torch.cuda.Event | float  # the clock's mark after the copy to the host


class LoggingTrainer(Trainer):
    """A Trainer whose log entries carry time and memory, and whose logging steps read nothing off the GPU
    (`deferred_logging=False`: they read as the Trainer does)."""

    def __init__(self, *args, deferred_logging: bool = True, **kwargs):
        self.deferred_logging = deferred_logging
        self.pending_log: PendingLog | None = None
        self.logged_seconds: float | None = None  # when the GPU finished the step whose values are logged late
        self.clock: StepClock | None = None  # from the start of training
        super().__init__(*args, **kwargs)

    def train(self, *args, **kwargs):
        self.clock = StepClock(self.args.device)
        return super().train(*args, **kwargs)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        super().log(logs, start_time)
        entry = self.state.log_history[-1]
        if self.clock is not None:
            entry["elapsed_s"] = self.clock.now() if self.logged_seconds is None else self.logged_seconds
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            entry["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            entry["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
            entry["allocator_retries"] = torch.cuda.memory_stats().get("num_alloc_retries", 0)
            torch.cuda.reset_peak_memory_stats()

    def _maybe_log_save_evaluate(self, tr_loss, grad_norm, model, trial, epoch, ignore_keys_for_eval, start_time,
                                 learning_rate=None):
        control = self.control
        if (self.deferred_logging and control.should_log and self.state.global_step > self._globalstep_last_logged
                and self.args.include_num_input_tokens_seen == "no"):  # which a late log would read a step late
            self.flush_log(start_time)
            self.pending_log = self.start_log(tr_loss, grad_norm, learning_rate)
            control.should_log = False
        if control.should_evaluate or control.should_save or control.should_training_stop:
            self.flush_log(start_time)
        super()._maybe_log_save_evaluate(tr_loss, grad_norm, model, trial, epoch, ignore_keys_for_eval, start_time,
                                         learning_rate=learning_rate)

    def start_log(self, tr_loss: torch.Tensor, grad_norm, learning_rate: float | None) -> PendingLog:
        """What the Trainer's logging step does up to its reads: the loss gathered over processes and reset, the
        logging step recorded; the values start on their way to the host."""
        loss = nested_gather(tr_loss, self.args.parallel_mode).mean()
        norm = grad_norm if isinstance(grad_norm, torch.Tensor) else torch.tensor(grad_norm or 0.0)
        if hasattr(norm, "full_tensor"):  # a DTensor (FSDP2)
            norm = norm.full_tensor()
        values = torch.stack([loss.double(), norm.to(loss.device, torch.float64)])
        if values.is_cuda:
            values = torch.empty(values.shape, dtype=values.dtype, pin_memory=True).copy_(values, non_blocking=True)
        tr_loss -= tr_loss
        pending = PendingLog(step=self.state.global_step, epoch=self.state.epoch,
                             steps_since_last=self.state.global_step - self._globalstep_last_logged,
                             learning_rate=self._get_learning_rate() if learning_rate is None else learning_rate,
                             has_grad_norm=grad_norm is not None, values=values, done=self.clock.mark())
        self._globalstep_last_logged = self.state.global_step
        return pending

    def flush_log(self, start_time: float | None = None) -> None:
        """Log the pending values (a logging step ago, so the GPU is normally past them) under their own step."""
        pending, self.pending_log = self.pending_log, None
        if pending is None:
            return
        finished = self.clock.seconds(pending.done)  # waits for the copy
        loss, norm = pending.values.tolist()
        self._total_loss_scalar += loss
        logs = {"loss": loss / pending.steps_since_last}
        if pending.has_grad_norm:
            logs["grad_norm"] = norm
        logs["learning_rate"] = pending.learning_rate
        state = self.state
        now = state.global_step, state.epoch
        state.global_step, state.epoch, self.logged_seconds = pending.step, pending.epoch, finished
        try:
            self.log(logs, start_time)
        finally:
            state.global_step, state.epoch = now
            self.logged_seconds = None

    def _finalize_training(self, *args, **kwargs):
        self.flush_log()
        return super()._finalize_training(*args, **kwargs)
