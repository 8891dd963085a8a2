"""The fast path's one-row quantized launches (autotuned, as decoding runs them) on the 7B shapes, bytes of codes,
scales and offsets read per second (6 weight copies rotated, CUDA-graph replays): run from a tree's root to compare
kernel versions in one call (f.sh)."""
import json
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from profile_decode import replay_seconds, rotated_quantized_weights  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel  # noqa: E402

SHAPES = {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
with torch.no_grad():
    for bits in (4, 8):
        for shape, parts in SHAPES.items():
            sets, nbytes = rotated_quantized_weights(bits, parts)
            x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
            for gated in ((False, True) if shape == "gate|up" else (False,)):
                seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w, gated=gated) for w in sets])
                print(json.dumps(dict(version=sys.argv[1], bits=bits, shape=shape, gated=gated,
                                      TBps=round(nbytes / seconds / 1e12, 3))), flush=True)
