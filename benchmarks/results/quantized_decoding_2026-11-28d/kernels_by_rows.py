"""The fast path's int4 and int8 launches (autotuned, as decoding, batches and prompts run them) on the 7B shapes at 1,
8, 16, 32 and 96 rows, bytes of codes, scales and offsets read per second (6 weight copies rotated, CUDA-graph
replays), each with its relative error against dequantize-then-matmul, then the tiles autotune chose: run from a tree's
root to compare kernel versions (and their int4 layouts) in one call.
    python benchmarks/results/quantized_decoding_2026-11-28d/kernels_by_rows.py VERSION BITS"""
import json
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from profile_decode import replay_seconds, rotated_quantized_weights  # noqa: E402
import quantized_decode_kernels as kernels  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel, reference_product  # noqa: E402

SHAPES = {"q|k|v": [(4096, 4096)] * 3, "o": [(4096, 4096)], "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
with torch.no_grad():
    for bits in [int(b) for b in sys.argv[2].split(",")]:
        for shape, parts in SHAPES.items():
            sets, nbytes = rotated_quantized_weights(bits, parts)
            for rows in (1, 8, 16, 32, 96):
                x = torch.randn(rows, parts[0][1], device="cuda", dtype=torch.bfloat16)
                seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w) for w in sets])
                reference = reference_product(x, sets[0]).float()
                error = (launch_quantized_kernel(x, sets[0]).float() - reference).norm() / reference.norm()
                print(json.dumps(dict(version=sys.argv[1], bits=bits, shape=shape, rows=rows,
                                      TBps=round(nbytes / seconds / 1e12, 3), relative_error=round(float(error), 5))),
                      flush=True)
    for key, config in kernels._rows_kernel.cache.items():
        print(json.dumps(dict(version=sys.argv[1], chosen=[str(part) for part in key], config=str(config))))
