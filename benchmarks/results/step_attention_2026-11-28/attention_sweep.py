"""The step attention launch's slots a step and warps (decode_attention.BLOCK_SLOTS, WARPS, the same for a whole
cache) swept with profile_decode.py's attention timings (one layer of the 7B shape, 8 caches rotated, CUDA-graph
replays, against the same steps in torch ops with SDPA): 64 x 4 spills registers (255 and a stack, sm_90).

    python benchmarks/results/step_attention_2026-11-28/attention_sweep.py   # on a GPU, from the repository root
"""
import json
import sys

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
import decode_attention  # noqa: E402
from profile_decode import attention_times  # noqa: E402

for block_slots, warps in ((64, 4), (32, 4), (64, 8), (128, 8), (32, 2), (16, 2)):
    decode_attention.BLOCK_SLOTS, decode_attention.WARPS = block_slots, warps
    decode_attention.WHOLE_CACHE_BLOCK_SLOTS, decode_attention.WHOLE_CACHE_WARPS = block_slots, warps
    attention_times(lambda **fields: print(json.dumps({"block_slots": block_slots, "warps": warps, **fields}),
                                           flush=True))
