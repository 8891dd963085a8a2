"""Run on 2026-11-28 (thirteenth session; kernels_one_row_wide_k_h100.jsonl): one-row quantized kernels with wide steps,
BLOCK_K 2048 and 4096, against the shipped autotuned launch. Compiled offline for sm_90
(`benchmarks/inspect_kernel.py --bits 4 --block_n 8 --block_k 4096 --warps 8`): Triton then puts the warps along the
step's groups and 4 of the 8 rows in each thread's registers (warpsPerCTA [2, 4, 1] instead of [8, 1, 1]), so each
input loaded serves 4 rows: 40 bytes of input loaded per 64 of int4 codes, against 64 per 16 with the shipped 8 x
1024 (the L1 traffic that bounds the int4 kernel), at the price of layout conversions through shared memory. 7B
shapes, 6 weight copies rotated, CUDA-graph replays; TB/s of codes and scales; gate|up also with the SiLU gate in the
launch (`gated`)."""
import json
import os
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from profile_decode import replay_seconds, rotated_quantized_weights  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel  # noqa: E402

CONFIGS = [None] + [{"BLOCK_M": 1, "BLOCK_N": n, "BLOCK_K": k, "BIT_CAST": bit_cast, "num_warps": warps}
                    for n, k, warps in ((8, 1024, 8), (8, 2048, 8), (8, 4096, 8), (16, 2048, 8), (16, 4096, 8),
                                        (8, 2048, 4), (4, 4096, 4), (16, 4096, 16), (32, 4096, 16))
                    for bit_cast in (False, True)]
SHAPES = {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
out = open(os.path.join(os.environ.get("OUT", "/tmp"), "kernels_one_row_wide_k.jsonl"), "w")
with torch.no_grad():
    for bits in (4, 8):
        for shape, parts in SHAPES.items():
            weights, nbytes = rotated_quantized_weights(bits, parts)
            x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
            reference = launch_quantized_kernel(x, weights[0]).float()
            for gated in ((False, True) if shape == "gate|up" else (False,)):
                for config in CONFIGS:
                    try:
                        result = launch_quantized_kernel(x, weights[0], config, gated=gated).float()
                        seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w, config, gated=gated)
                                                          for w in weights])
                    except Exception as error:  # e.g. out of registers or shared memory
                        print(bits, shape, gated, config, "error", str(error)[:200], flush=True)
                        continue
                    if not gated:
                        assert (result - reference).abs().max() <= 0.05 * reference.abs().max(), (config, shape)
                    record = dict(bits=bits, shape=shape, gated=gated, config=config or "shipped (autotuned)",
                                  TBps=nbytes / seconds / 1e12)
                    print(json.dumps(record), file=out, flush=True)
                    print(bits, shape, gated, config and (config["BLOCK_N"], config["BLOCK_K"], config["num_warps"],
                                                           config["BIT_CAST"]), round(record["TBps"], 3), flush=True)
