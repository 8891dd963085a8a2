"""Sweep (2026-11-28, seventeenth session): int4 tiles for the two narrow 7B weights (o: 4096 x 4096, down: 4096 x
11008), whose 4096 outputs make few programs, at 96 rows (a prompt) and 8 (batched decoding), against the shipped
autotuned launch. 6 weight copies rotated, CUDA-graph replays, TB/s of codes, scales and offsets, and each tile's
relative error against dequantize-then-matmul.
    python benchmarks/results/quantized_decoding_2026-11-28d/sweep_narrow.py prompt|batch"""
import itertools
import json
import sys

import torch
import triton

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from profile_decode import replay_seconds, rotated_quantized_weights  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel, reference_product  # noqa: E402

SHAPES = {"o": [(4096, 4096)], "down": [(4096, 11008)]}
PROMPT = [dict(WEIGHTS_FIRST=first, BLOCK_M=m, BLOCK_N=n, BLOCK_K=k, num_stages=stages, num_warps=4)
          for first, (m, n), k, stages in itertools.product(
              (False, True), ((64, 32), (64, 64), (128, 32), (128, 64), (32, 64), (32, 128)), (128, 256), (3, 4))
          if not (first and m == 128) and not (not first and m == 32)]
BATCH = [dict(WEIGHTS_FIRST=True, BLOCK_M=16, BLOCK_N=n, BLOCK_K=k, num_stages=stages, num_warps=warps)
         for n, k, stages, warps in itertools.product((64, 128), (128, 256, 512), (2, 3, 4), (4,))]


def emit(**fields):
    print(json.dumps(fields), flush=True)


def measure(shape, rows, configs):
    sets, nbytes = rotated_quantized_weights(4, SHAPES[shape])
    x = torch.randn(rows, SHAPES[shape][0][1], device="cuda", dtype=torch.bfloat16)
    reference = reference_product(x, sets[0]).float()
    emit(shape=shape, rows=rows, config="shipped",
         TBps=round(nbytes / replay_seconds(lambda: [launch_quantized_kernel(x, w) for w in sets]) / 1e12, 3))
    for config in configs:
        try:
            error = (launch_quantized_kernel(x, sets[0], config).float() - reference).norm() / reference.norm()
            seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w, config) for w in sets])
            emit(shape=shape, rows=rows, config=config, TBps=round(nbytes / seconds / 1e12, 3),
                 relative_error=round(float(error), 5))
        except (triton.runtime.errors.OutOfResources, RuntimeError) as error:
            emit(shape=shape, rows=rows, config=config, TBps=str(error)[:80])


with torch.no_grad():
    part = sys.argv[1]
    if part == "prompt":
        for shape in ("o", "down"):
            measure(shape, 96, PROMPT)
    elif part == "batch":
        for shape in ("o", "down"):
            measure(shape, 8, BATCH)
