"""Where a training step's time goes: train_hf.py itself, a few steps timed plainly, then a few under torch.profiler.

Give train_hf.py's flags after `--`. First, after the warm-up, `--timed_steps` steps without the profiler (which slows
the host): each rank's wall time per step, the part its host spent waiting for its GPU (reading values off it, or
synchronising) or collecting garbage, and the rest, the host's own work ("busy"); rank 0 prints every rank's and, since
a synchronised step ends when the last rank's work does, how much longer the busiest rank of each step was busy than
the ranks' mean. Then `--steps` steps under the profiler: the kernels by total GPU time, grouped by kind, and the
step's wall time.
Under torchrun every rank prints what limits scaling: how long its GPU sat idle, how long it computed (uneven work
across ranks shows here), how much of the communication (NCCL kernels, which also wait for the slowest rank) no
computation hid, how long the host waited for the data loader, and the GPU's idle gaps by what opened them (a
synchronisation the host was waiting in when the GPU ran dry, named by the operators around it, or by its Python caller
with `--with_stack`, which slows the host; else the host launching too slowly, named by the operators around the
launch that ended the gap); then its host's timeline of an optimizer
step (the micro-batches' forward and backward with gradient clipping, the optimizer, the scheduler and zero_grad, and
the Trainer's work between steps), how many values it read off the device (each a wait for the GPU) and how long it was
blocked in synchronisation, and the operators that took most of its own CPU time (run with `--cpu_threads 1` and without
to see which ran intra-op parallel). Rank 0 prints the kernel table too. On a CPU (`--use_cpu`) only the host's part is
printed.

    python benchmarks/profile_train.py --steps 2 -- --stage 2 --model_name_or_path /tmp/bench7b/model \\
        --data_path /tmp/bench7b/data.json --image_folder /tmp/bench7b --output_dir /tmp/prof --bf16 \\
        --per_device_train_batch_size 32 --max_steps 6 --save_strategy no --save_final false --report_to none
    torchrun --nproc_per_node 4 benchmarks/profile_train.py -- ...   # the same flags, on 4 GPUs
"""

import argparse
import bisect
import functools
import gc
import os
import re
import statistics
import sys
import time
from collections import defaultdict

import torch
from torch.autograd import DeviceType
from transformers import TrainerCallback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from train_hf import train  # noqa: E402

HOST_OPERATORS = 12  # operators listed by their own CPU time
# The kind of work a kernel does, from its name: the first kind whose test passes.
KINDS = [
    ("communication (NCCL)", lambda name: "nccl" in name),
    ("attention", lambda name: "flash" in name or "fmha" in name),
    ("matrix products", lambda name: any(f in name for f in ("gemm", "nvjet", "cutlass", "xmma", "matmul"))),
    ("optimizer", lambda name: "adam" in name or "multi_tensor" in name),
    ("Triton (Liger)", lambda name: "::" not in name),  # Triton kernels carry bare names
    ("elementwise, dropout, copies", lambda name: True),
]


def merged(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of (start, end) intervals as sorted, disjoint intervals."""
    union = []
    for start, end in sorted(intervals):
        if union and start <= union[-1][1]:
            union[-1] = (union[-1][0], max(union[-1][1], end))
        else:
            union.append((start, end))
    return union


def covered(intervals: list[tuple[float, float]]) -> float:
    return sum(end - start for start, end in merged(intervals))


def uncovered(intervals: list[tuple[float, float]], cover: list[tuple[float, float]]) -> float:
    """How much of the union of `intervals` lies outside the union of `cover` (exposed communication: NCCL kernels
    running while no computation does)."""
    inside, cover = 0.0, merged(cover)
    for start, end in merged(intervals):
        for cover_start, cover_end in cover:
            inside += max(0.0, min(end, cover_end) - max(start, cover_start))
    return covered(intervals) - inside


def device_work(events) -> list:
    """The GPU's kernels, copies and sets, without the annotations (`DistributedDataParallel.forward`,
    `nccl:all_reduce`) that the profiler draws on the GPU's timeline over whole spans of work and idle time."""
    annotations = {event.name for event in events if getattr(event, "is_user_annotation", False)}  # torch >= 2.4
    return [event for event in events if event.device_type == DeviceType.CUDA and event.name not in annotations]


def caller(event, host_events: list) -> str:
    """Where `event` (a synchronisation) was called from, from the host operators around it on its thread (the
    profiler does not always link a CUDA runtime call to its operator): with `--with_stack`, the innermost two Python
    frames outside torch itself of the innermost operator that recorded a stack; without, the innermost and
    outermost operators (e.g. `aten::item in LigerFusedLinearCrossEntropyFunction`)."""
    span = event.time_range
    chain = sorted((other for other in host_events if other is not event
                    and other.thread == event.thread and other.time_range.start <= span.start
                    and other.time_range.end >= span.end),
                   key=lambda other: other.time_range.end - other.time_range.start)
    stack = next((other.stack for other in chain if other.stack), None)
    if stack:
        frames = [frame for frame in stack if "/torch/" not in frame][:2]
        return " <- ".join(re.sub(r"^.*/", "", frame) for frame in frames) or "(inside torch)"
    if not chain:
        return "(no enclosing operator)"
    return chain[0].name if len(chain) == 1 else f"{chain[0].name} in {chain[-1].name}"


def idle_causes(work: list, events) -> dict[str, list[float]]:
    """The GPU's idle gaps between its `work` (`device_work(events)`) of IDLE_GAP_US or more, summed (microseconds,
    count) by what opened them: a host synchronisation that was already waiting when the GPU ran dry (the host then
    had to launch the next work from scratch), named by its caller, or else the host not launching fast enough, named
    by the operators around the launch of the work that ended the gap (the CUDA runtime call shares the work's
    correlation id)."""
    busy = merged([(event.time_range.start, event.time_range.end) for event in work])
    work = sorted(work, key=lambda event: event.time_range.start)
    starts = [event.time_range.start for event in work]
    host_events = [event for event in events if event.device_type == DeviceType.CPU]
    launches = {event.id: event for event in host_events if event.name.startswith("cu")}  # cudaLaunchKernel, ...
    syncs = sorted((event for event in events if event.name in SYNCHRONISATIONS),
                   key=lambda event: event.time_range.end)
    ends = [sync.time_range.end for sync in syncs]
    causes = defaultdict(lambda: [0.0, 0])
    for (_, idle_from), (idle_to, _) in zip(busy, busy[1:]):
        if idle_to - idle_from < IDLE_GAP_US:
            continue
        index = bisect.bisect_left(ends, idle_from)
        if index < len(syncs) and syncs[index].time_range.start <= idle_from:
            cause = caller(syncs[index], host_events)
        else:
            launch = launches.get(work[bisect.bisect_left(starts, idle_to)].id)
            cause = "the host launching too slowly" + (f", up to {caller(launch, host_events)}" if launch else "")
        causes[cause][0] += idle_to - idle_from
        causes[cause][1] += 1
    return causes


def kind_of(kernel_name: str) -> str:
    return next(kind for kind, test in KINDS if test(kernel_name.lower()))


# The host's phases of an optimizer step, each ending at one of the Trainer's callbacks (PhaseClock).
HOST_PHASES = ("micro-batches before the last", "last micro-batch and clipping", "optimizer",
               "scheduler and zero_grad", "between steps")
SYNCHRONISATIONS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")
IDLE_GAP_US = 100  # GPU idle gaps shorter than this are launch latency, not a cause worth naming
IDLE_CAUSES = 10  # causes of idle GPU time listed per rank


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def print_line(text: str) -> None:
    """`text` as one line in one write, so that the ranks' lines on a shared output do not run into each other."""
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), (text + "\n").encode())


class HostWaits:
    """Seconds this process's host spends waiting for its GPU (in `Tensor.item`, `bool(tensor)`, `Tensor.tolist` and
    `torch.cuda.synchronize`, wrapped inside `with`: how the Trainer and Liger's loss read values off the device; reads
    inside C++ operators are not seen) and in garbage collection (gc's callbacks), and how many collections ran."""

    WRAPPED = ((torch.Tensor, "item"), (torch.Tensor, "__bool__"), (torch.Tensor, "tolist"),
               (torch.cuda, "synchronize"))

    def __init__(self):
        self.waiting = self.collecting = 0.0
        self.collections, self.collection_began, self.originals = 0, None, {}

    def __enter__(self) -> "HostWaits":
        for owner, name in self.WRAPPED:
            self.originals[owner, name] = owner.__dict__.get(name)  # None: inherited (torch.Tensor's from C)
            setattr(owner, name, self.timed(getattr(owner, name)))
        gc.callbacks.append(self.on_collection)
        return self

    def __exit__(self, *exception) -> None:
        gc.callbacks.remove(self.on_collection)
        for (owner, name), original in self.originals.items():
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)

    def timed(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.waiting += time.perf_counter() - began
        return wrapper

    def on_collection(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.collection_began = time.perf_counter()
        elif self.collection_began is not None:
            self.collecting += time.perf_counter() - self.collection_began
            self.collections += 1

    def totals(self) -> tuple[float, float, int]:
        return self.waiting, self.collecting, self.collections


class PhaseClock(TrainerCallback):
    """The host's seconds in each phase of an optimizer step (HOST_PHASES) while `recording` (the subclass's window of
    steps): the time between the Trainer's callbacks (a micro-batch that does not end the step ends at
    on_substep_end; the last, with gradient clipping, at on_pre_optimizer_step; the optimizer at on_optimizer_step;
    the scheduler and zero_grad at on_step_end; between steps, where the Trainer logs and fetches the next step's
    micro-batches, at on_step_begin)."""

    def __init__(self):
        self.last_stamp, self.steps_recorded = None, 0
        self.host, self.stamps = defaultdict(float), defaultdict(int)

    @property
    def recording(self) -> bool:
        raise NotImplementedError

    def stamp(self, phase: str) -> None:
        now = time.perf_counter()
        if self.recording and self.last_stamp is not None:
            self.host[phase] += now - self.last_stamp
            self.stamps[phase] += 1
        self.last_stamp = now

    def on_step_begin(self, args, state, control, **kwargs):
        self.stamp(HOST_PHASES[4])

    def on_substep_end(self, args, state, control, **kwargs):
        self.stamp(HOST_PHASES[0])

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.stamp(HOST_PHASES[1])

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.stamp(HOST_PHASES[2])

    def on_step_end(self, args, state, control, **kwargs):
        self.stamp(HOST_PHASES[3])
        self.steps_recorded += self.recording

    def phases(self) -> str:
        """Milliseconds per optimizer step in each phase (all the micro-batches before the last together); between
        steps only where two recorded steps followed each other."""
        per_step = {phase: self.host[phase] / (self.steps_recorded if phase == HOST_PHASES[0] else self.stamps[phase])
                    for phase in HOST_PHASES if self.stamps[phase]}
        return ", ".join(f"{phase} {1e3 * seconds:.1f} ms" for phase, seconds in per_step.items())


class TimeSteps(PhaseClock):
    """Times optimizer steps [start, start + count) without the profiler on every rank; rank 0 then prints each rank's
    wall, waiting, garbage collection and busy time per step, and what the busiest rank of each step cost the rest."""

    def __init__(self, start: int, count: int):
        super().__init__()
        self.start, self.count, self.waits, self.steps = start, count, None, []

    @property
    def recording(self) -> bool:
        return self.waits is not None

    def on_step_begin(self, args, state, control, **kwargs):
        super().on_step_begin(args, state, control, **kwargs)
        if self.start <= state.global_step < self.start + self.count:
            if self.waits is None:
                self.waits = HostWaits().__enter__()
            self.began, self.before = time.perf_counter(), self.waits.totals()

    def on_step_end(self, args, state, control, **kwargs):
        super().on_step_end(args, state, control, **kwargs)
        if self.waits is None:
            return
        wall = time.perf_counter() - self.began
        waiting, collecting, collections = (after - before for after, before in zip(self.waits.totals(), self.before))
        self.steps.append({"wall": wall, "waiting": waiting, "gc": collecting, "collections": collections,
                           "busy": wall - waiting - collecting})
        if state.global_step == self.start + self.count:
            self.waits.__exit__(None, None, None)
            self.waits = None
            ranks = [(self.steps, self.phases())]
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                ranks = [None] * torch.distributed.get_world_size()
                torch.distributed.all_gather_object(ranks, (self.steps, self.phases()))
            if args.process_index == 0:
                print_line(self.summary(ranks))

    def summary(self, ranks: list[tuple[list[dict], str]]) -> str:
        """Per rank, means over the steps in milliseconds and the host's phases; then the busiest rank's excess over
        the ranks' mean."""
        lines = [f"timed steps {self.start + 1}-{self.start + self.count} without the profiler (ms per optimizer "
                 "step, from on_step_begin to on_step_end: the time between steps is in the phases; busy = wall - "
                 "waiting for the GPU - garbage collection):"]
        for rank, (steps, phases) in enumerate(ranks):
            mean = {key: statistics.mean(step[key] for step in steps) for key in steps[0]}
            busy = [1e3 * step["busy"] for step in steps]
            lines.append(f"  rank {rank}: wall {1e3 * mean['wall']:.1f}, busy {1e3 * mean['busy']:.1f} (steps "
                         f"{min(busy):.1f}-{max(busy):.1f}), waiting for the GPU {1e3 * mean['waiting']:.1f}, garbage "
                         f"collection {1e3 * mean['gc']:.1f} in {mean['collections']:.1f} collections")
            lines.append(f"    host phases: {phases}")
        by_step = list(zip(*(steps for steps, _ in ranks)))
        busiest = [max(range(len(step)), key=lambda rank: step[rank]["busy"]) for step in by_step]
        excess = statistics.mean(1e3 * (max(r["busy"] for r in step) - statistics.mean(r["busy"] for r in step))
                                 for step in by_step)
        wall = statistics.mean(1e3 * statistics.mean(r["wall"] for r in step) for step in by_step)
        lines.append(f"  the busiest rank of each step was busy {excess:.1f} ms longer than the ranks' mean "
                     f"({100 * excess / wall:.0f}% of the wall); busiest rank by step: {busiest}")
        return "\n".join(lines)


class ProfileSteps(PhaseClock):
    """Profiles optimizer steps [start, start + count) and prints the summary when they are done."""

    def __init__(self, start: int, count: int, *, with_stack: bool = False, trace_dir: str | None = None):
        super().__init__()
        self.start, self.count, self.with_stack, self.trace_dir = start, count, with_stack, trace_dir
        self.profiler, self.began = None, 0.0

    @property
    def recording(self) -> bool:
        return self.profiler is not None

    def on_step_begin(self, args, state, control, **kwargs):
        super().on_step_begin(args, state, control, **kwargs)
        if state.global_step == self.start:
            synchronize()
            activities = [torch.profiler.ProfilerActivity.CPU]
            if torch.cuda.is_available():
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            self.profiler = torch.profiler.profile(activities=activities, with_stack=self.with_stack)
            self.profiler.__enter__()
            self.began = self.last_stamp = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        super().on_step_end(args, state, control, **kwargs)
        if self.profiler is None or state.global_step != self.start + self.count:
            return
        synchronize()
        wall = 1e3 * (time.perf_counter() - self.began) / self.count
        self.profiler.__exit__(None, None, None)
        if self.trace_dir:
            os.makedirs(self.trace_dir, exist_ok=True)
            self.profiler.export_chrome_trace(os.path.join(self.trace_dir, f"rank{args.process_index}.json"))
        events = self.profiler.events()
        self.print_host(args.process_index, events)
        if torch.cuda.is_available():
            self.print_gpu(args.process_index, events, wall)
        self.profiler = None

    def print_host(self, rank: int, events) -> None:
        """The host's timeline of an optimizer step: its phases, the values read off the device, the waits, and the
        operators with the most CPU time of their own."""
        reads = sum(event.name == "aten::_local_scalar_dense" for event in events)
        blocked = sum(event.time_range.elapsed_us() for event in events if event.name in SYNCHRONISATIONS)
        print_line(f"rank {rank}: host per optimizer step: {self.phases()}; {reads / self.count:.0f} values read off "
                   f"the device, blocked in synchronisation {blocked / 1e3 / self.count:.1f} ms")
        own, calls = defaultdict(float), defaultdict(int)
        for event in events:
            if event.device_type == DeviceType.CPU:
                own[event.name] += event.self_cpu_time_total
                calls[event.name] += 1
        top = sorted(own, key=lambda name: -own[name])[:HOST_OPERATORS]
        print_line(f"rank {rank}: host operators by own CPU time per optimizer step: " + ", ".join(
            f"{name} {own[name] / 1e3 / self.count:.1f} ms x{calls[name] / self.count:g}" for name in top))

    def print_gpu(self, rank: int, events, wall: float) -> None:
        """Each rank's GPU idle time, computation and exposed communication; rank 0's kernels by kind and name."""
        kernels = device_work(events)
        spans = {kind: [(k.time_range.start, k.time_range.end) for k in kernels if kind_of(k.name) == kind]
                 for kind, _ in KINDS}
        communication = spans.pop("communication (NCCL)")
        computation = [span for kind_spans in spans.values() for span in kind_spans]
        per_step = 1e-3 / self.count  # microseconds over the profiled steps -> milliseconds per step
        busy = covered(computation + communication) * per_step
        loader_wait = sum(event.time_range.elapsed_us() for event in events
                          if event.device_type == DeviceType.CPU and event.name.startswith("enumerate(DataLoader)"))
        print_line(f"rank {rank}: wall {wall:.1f} ms per optimizer step, "
                   f"GPU idle {100 * (1 - busy / wall):.0f}%, computation {covered(computation) * per_step:.1f} ms, "
                   f"communication {covered(communication) * per_step:.1f} ms of which not hidden by computation "
                   f"{uncovered(communication, computation) * per_step:.1f} ms, waiting for the data loader "
                   f"{loader_wait * per_step:.1f} ms")
        causes = sorted(idle_causes(kernels, events).items(), key=lambda item: -item[1][0])[:IDLE_CAUSES]
        print_line(f"rank {rank}: GPU idle gaps of {IDLE_GAP_US} us or more per optimizer step, by what opened them: "
                   + "; ".join(f"{microseconds * per_step:.1f} ms in {count / self.count:g} gaps: {cause}"
                               for cause, (microseconds, count) in causes))
        if rank == 0:
            by_kind, by_name = defaultdict(float), defaultdict(lambda: [0.0, 0])
            for kernel in kernels:
                milliseconds = (kernel.time_range.end - kernel.time_range.start) * per_step
                by_kind[kind_of(kernel.name)] += milliseconds
                by_name[kernel.name][0] += milliseconds
                by_name[kernel.name][1] += 1
            total = sum(by_kind.values())
            print(f"\nper optimizer step: wall {wall:.1f} ms, GPU kernels {total:.1f} ms (summed over streams)")
            for kind, milliseconds in sorted(by_kind.items(), key=lambda item: -item[1]):
                print(f"  {kind:28s} {milliseconds:8.1f} ms  {100 * milliseconds / total:5.1f}%")
            print("top kernels (ms per step):")
            for name, (milliseconds, count) in sorted(by_name.items(), key=lambda item: -item[1][0])[:25]:
                print(f"  {milliseconds:8.2f}  x{count // self.count:<5d} {name[:110]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Not --start: torchrun would take it for an abbreviation of its --start-method.
    parser.add_argument("--warmup_steps", type=int, default=3, help="optimizer steps before timing")
    parser.add_argument("--timed_steps", type=int, default=8, help="optimizer steps timed without the profiler")
    parser.add_argument("--steps", type=int, default=2, help="optimizer steps profiled after the timed ones")
    parser.add_argument("--with_stack", action="store_true",
                        help="record Python stacks to name the callers of the synchronisations that left the GPU idle "
                             "(by file and line; otherwise by operator), at the price of a much slower host")
    parser.add_argument("--trace_dir", help="also write each rank's profiled steps there as a Chrome trace "
                                            "(rank<N>.json: chrome://tracing or ui.perfetto.dev)")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then train_hf.py's flags")
    args = parser.parse_args()
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    callbacks = []
    if args.timed_steps:
        callbacks.append(TimeSteps(args.warmup_steps, args.timed_steps))
    if args.steps:
        callbacks.append(ProfileSteps(args.warmup_steps + args.timed_steps, args.steps, with_stack=args.with_stack,
                                      trace_dir=args.trace_dir))
    train(train_args, callbacks=callbacks)


if __name__ == "__main__":
    main()
