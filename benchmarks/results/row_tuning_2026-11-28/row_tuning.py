"""How one row's quantized products are tuned (quantized_decode_kernels._row_kernel: Triton's autotune, each candidate
launched alone and timed by do_bench after writing 256 MB to flush L2) against what each candidate takes in a
decode-like stream. For each 7B shape (q|k|v, o, gate|up gated, down) and int4/int8, every candidate of ROW_CONFIGS
that fits, timed four ways, the first three twice (their noise):
- `autotune`: do_bench of the launch, as autotune times it;
- `replayed`: the launch replayed from a CUDA graph by do_bench (several rows' autotune, `_replayed_timings`);
- `clean`: the graph replayed after reading 256 MB, so that L2 holds clean lines, as after another weight's product;
- `stream`: graph replays over enough copies of the weight (>= 200 MB) that L2 serves none of them (the reference).
Then the pick of each timing and what the pick costs in the stream against the stream's best; and autotune's own pick
(a fresh Triton cache directory is the caller's: `TRITON_CACHE_DIR`).

    python benchmarks/results/row_tuning_2026-11-28/row_tuning.py --output row_tuning.jsonl
"""

import argparse
import math
import os
import sys

import torch
import triton

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(BENCHMARKS))
sys.path.insert(0, BENCHMARKS)

import quantized_decode_kernels  # noqa: E402
from bench_records import append_record  # noqa: E402
from profile_decode import replay_seconds, rotated_quantized_weights  # noqa: E402
from quantized_decode_kernels import ROW_CONFIGS, launch_quantized_kernel  # noqa: E402

SHAPES = {"q|k|v": [(4096, 4096)] * 3, "o": [(4096, 4096)], "gate|up, gated": [(11008, 4096)] * 2,
          "down": [(4096, 11008)]}
FLUSH_BYTES = 256 * 2**20


def clean_flush_ms(call, flush: torch.Tensor, quantiles: tuple = (0.5,), repeats: int = 200) -> list[float]:
    """Quantiles of the milliseconds of `call` replayed from a CUDA graph, each replay after reading `flush` (L2 left
    holding clean lines)."""
    call()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        call()
    events = []
    for _ in range(repeats):
        flush.sum()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        events.append((start, end))
    torch.cuda.synchronize()
    times = sorted(start.elapsed_time(end) for start, end in events)
    return [times[min(int(quantile * repeats), repeats - 1)] for quantile in quantiles]


def replayed_us(call) -> float:
    return quantized_decode_kernels._replayed_timings(call, quantiles=(0.5, 0.2, 0.8))[0] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="row_tuning.jsonl")
    args = parser.parse_args()
    flush = torch.ones(FLUSH_BYTES // 4, dtype=torch.float32, device="cuda")
    timers = {"autotune": lambda call: triton.testing.do_bench(call, return_mode="median") * 1e3,
              "replayed": replayed_us, "clean": lambda call: clean_flush_ms(call, flush)[0] * 1e3}

    def record(**fields):
        append_record(args.output, fields)

    for bits in (4, 8):
        for name, parts in SHAPES.items():
            gated = name.endswith("gated")
            one, one_bytes = rotated_quantized_weights(bits, parts, 1)
            copies = max(6, math.ceil(200e6 / one_bytes))
            sets, _ = rotated_quantized_weights(bits, parts, copies)
            x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
            launch_quantized_kernel(x, one[0], gated=gated)  # autotune's own pick for this shape
            tuned = quantized_decode_kernels._row_kernel.cache
            picked = {str(key): config.all_kwargs() for key, config in tuned.items()}
            configs = [config for config in ROW_CONFIGS if not (bits == 4 and config["BIT_CAST"])]
            rows = []
            for config in configs:
                def call(weights=one[0], config=config):
                    return launch_quantized_kernel(x, weights, config, gated=gated)

                row = {way: [timer(call) for _ in range(2)] for way, timer in timers.items()}
                row["stream"] = replay_seconds(lambda: [launch_quantized_kernel(x, w, config, gated=gated)
                                                        for w in sets]) / copies * 1e6
                rows.append(row)
                record(kind="config", bits=bits, shape=name, config=config, **row)
            best_stream = min(row["stream"] for row in rows)
            for way in timers:
                for repeat in range(2):
                    pick = min(range(len(rows)), key=lambda index: rows[index][way][repeat])
                    record(kind="pick", bits=bits, shape=name, timing=way, repeat=repeat, config=configs[pick],
                           stream_us=rows[pick]["stream"], best_stream_us=best_stream)
            record(kind="autotune_cache", bits=bits, shape=name, configs=picked, copies=copies)


if __name__ == "__main__":
    with torch.no_grad():
        main()
