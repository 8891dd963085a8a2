"""Where a training step's GPU time goes: train_hf.py itself under torch.profiler for a few steps after the warm-up.

Give train_hf.py's flags after `--`; prints the kernels by total GPU time, grouped by kind, and the step's wall time:

    python benchmarks/profile_train.py --steps 2 -- --stage 2 --model_name_or_path /tmp/bench7b/model \\
        --data_path /tmp/bench7b/data.json --image_folder /tmp/bench7b --output_dir /tmp/prof --bf16 \\
        --per_device_train_batch_size 32 --max_steps 6 --save_strategy no --save_final false --report_to none
"""

import argparse
import os
import sys
import time
from collections import defaultdict

import torch
from transformers import TrainerCallback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from train_hf import train  # noqa: E402

# The kind of work a kernel does, from its name: the first kind whose test passes.
KINDS = [
    ("attention", lambda name: "flash" in name or "fmha" in name),
    ("matrix products", lambda name: any(f in name for f in ("gemm", "nvjet", "cutlass", "xmma", "matmul"))),
    ("optimizer", lambda name: "adam" in name or "multi_tensor" in name),
    ("Triton (Liger)", lambda name: "::" not in name),  # Triton kernels carry bare names
    ("elementwise, dropout, copies", lambda name: True),
]


class ProfileSteps(TrainerCallback):
    """Profiles optimizer steps [start, start + count) and prints the summary when they are done."""

    def __init__(self, start: int, count: int):
        self.start, self.count, self.profiler, self.began = start, count, None, 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.start:
            torch.cuda.synchronize()
            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA])
            self.profiler.__enter__()
            self.began = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.profiler is None or state.global_step != self.start + self.count:
            return
        torch.cuda.synchronize()
        wall = (time.perf_counter() - self.began) / self.count
        self.profiler.__exit__(None, None, None)
        kernels = [event for event in self.profiler.key_averages() if event.device_time_total > 0]
        total = sum(event.device_time_total for event in kernels) / 1e3 / self.count
        by_kind = defaultdict(float)
        for event in kernels:
            kind = next(name for name, test in KINDS if test(event.key.lower()))
            by_kind[kind] += event.device_time_total / 1e3 / self.count
        print(f"\nper optimizer step: wall {1e3 * wall:.1f} ms, GPU kernels {total:.1f} ms "
              f"(GPU idle {100 * (1 - total / (1e3 * wall)):.0f}%)")
        for kind, milliseconds in sorted(by_kind.items(), key=lambda item: -item[1]):
            print(f"  {kind:24s} {milliseconds:8.1f} ms  {100 * milliseconds / total:5.1f}%")
        print("top kernels (ms per step):")
        for event in sorted(kernels, key=lambda e: -e.device_time_total)[:25]:
            print(f"  {event.device_time_total / 1e3 / self.count:8.2f}  x{event.count // self.count:<5d} "
                  f"{event.key[:110]}")
        self.profiler = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=int, default=3, help="optimizer steps before profiling (warm-up)")
    parser.add_argument("--steps", type=int, default=2, help="optimizer steps profiled")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then train_hf.py's flags")
    args = parser.parse_args()
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    train(train_args, callbacks=[ProfileSteps(args.start, args.steps)])


if __name__ == "__main__":
    main()
