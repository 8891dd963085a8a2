"""The fast path's several-row int4 and int8 launches (autotuned, as prompts and batched decoding run them) on the 7B
shapes at 8, 32 and 96 rows, bytes of codes, scales and offsets read per second (6 weight copies rotated, CUDA-graph
replays): run from a tree's root to compare kernel versions in one call."""
import json
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from profile_decode import replay_seconds, rotated_quantized_weights  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel  # noqa: E402

SHAPES = {"q|k|v": [(4096, 4096)] * 3, "o": [(4096, 4096)], "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
with torch.no_grad():
    for bits in [int(b) for b in sys.argv[2].split(",")]:
        for shape, parts in SHAPES.items():
            sets, nbytes = rotated_quantized_weights(bits, parts)
            for rows in (8, 32, 96):
                x = torch.randn(rows, parts[0][1], device="cuda", dtype=torch.bfloat16)
                seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w) for w in sets])
                print(json.dumps(dict(version=sys.argv[1], bits=bits, shape=shape, rows=rows,
                                      TBps=round(nbytes / seconds / 1e12, 3))), flush=True)
