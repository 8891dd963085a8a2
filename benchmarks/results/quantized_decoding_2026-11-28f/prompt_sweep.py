"""Prepared for the next session: the Gluon int4 prompt kernel's tile constants swept (outputs a program and warps,
shared buffers, steps copied ahead: with each wgmma waited for within its step, up to STAGES - 1 ahead is safe) on
the 7B q|k|v and gate|up at 96, 128 and 256 rows, microseconds a launch (6 weight copies rotated, CUDA-graph
replays) and the relative error against dequantize-then-matmul; the shipped configuration first.
    python benchmarks/results/quantized_decoding_2026-11-28f/prompt_sweep.py"""
import json
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
import quantized_prompt_kernel as prompt  # noqa: E402
from profile_decode import replay_seconds, rotated_quantized_weights  # noqa: E402
from quantized_decode_kernels import FRAGMENT_PAIR_ASM, reference_product  # noqa: E402

# (outputs a program, warps, shared buffers, steps ahead)
CONFIGS = [(64, 4, 4, 2), (64, 4, 4, 3), (64, 4, 3, 2), (64, 4, 5, 3), (64, 4, 5, 4), (64, 4, 6, 4), (128, 8, 4, 2),
           (128, 8, 4, 3), (128, 8, 3, 2)]


def product(x: torch.Tensor, weights: list, config: tuple) -> torch.Tensor:
    outputs, warps, stages, ahead = config
    return prompt.prompt_product(x, weights, FRAGMENT_PAIR_ASM[x.dtype],
                                 tiles=dict(outputs=outputs, warps=warps, stages=stages, ahead=ahead))


with torch.no_grad():
    for shape, parts in {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2}.items():
        sets, _ = rotated_quantized_weights(4, parts)
        for rows in (96, 128, 256):
            x = torch.randn(rows, 4096, device="cuda", dtype=torch.bfloat16)
            reference = reference_product(x, sets[0]).float()
            record = dict(shape=shape, rows=rows)
            for config in CONFIGS:
                error = (product(x, sets[0], config).float() - reference).norm() / reference.norm()
                seconds = replay_seconds(lambda: [product(x, weights, config) for weights in sets]) / len(sets)
                record["x".join(map(str, config))] = [round(seconds * 1e6, 2), round(float(error), 5)]
            print(json.dumps(record), flush=True)
