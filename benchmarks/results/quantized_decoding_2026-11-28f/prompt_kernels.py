"""The fast path's int4 launches for prompts (autotuned, as prefill runs them) on the 7B shapes whose products the
Gluon prompt kernel takes (q|k|v, gate|up) and o, at 65-512 rows: microseconds a launch (6 weight copies rotated,
CUDA-graph replays) and relative error against dequantize-then-matmul. Run from a tree's root to compare versions.
    python benchmarks/results/quantized_decoding_2026-11-28f/prompt_kernels.py VERSION"""
import json
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from profile_decode import replay_seconds, rotated_quantized_weights  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel, reference_product  # noqa: E402

SHAPES = {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "o": [(4096, 4096)]}
with torch.no_grad():
    for shape, parts in SHAPES.items():
        sets, nbytes = rotated_quantized_weights(4, parts)
        for rows in (65, 96, 128, 256, 512):
            x = torch.randn(rows, parts[0][1], device="cuda", dtype=torch.bfloat16)
            seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w) for w in sets]) / len(sets)
            reference = reference_product(x, sets[0]).float()
            error = (launch_quantized_kernel(x, sets[0]).float() - reference).norm() / reference.norm()
            print(json.dumps(dict(version=sys.argv[1], shape=shape, rows=rows, us=round(seconds * 1e6, 2),
                                  relative_error=round(float(error), 5))), flush=True)
