"""The one-row q|k|v products for Nsight Compute (b.sh): the shipped autotuned int4 and int8 launches, and the
input-major prototype's fastest int4 and int8 configurations (next_word_major.py), each once inside an NVTX range."""
import os
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from next_word_major import columns_product, input_major  # noqa: E402
from quantized_decode_kernels import PackedWeight, launch_quantized_kernel  # noqa: E402
from weight_quantization import quantize_int4, quantize_int8  # noqa: E402

BEST = {4: {"BLOCK_N": 16, "STEP": 4, "num_warps": 4, "SPLIT": 1, "BIT_CAST": False},
        8: {"BLOCK_N": 128, "STEP": 64, "num_warps": 8, "SPLIT": 4, "BIT_CAST": True}}
for bits, quantize in ((4, quantize_int4), (8, quantize_int8)):
    stored = [quantize(torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16) / 64) for _ in range(3)]
    weights = [PackedWeight(s["qweight"], s["scale"], s.get("offset")) for s in stored]
    transposed = input_major(weights)
    x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
    for name, product in (("shipped", lambda: launch_quantized_kernel(x, weights)),
                          ("input_major", lambda: columns_product(x, transposed, BEST[bits]))):
        for _ in range(3):
            product()  # autotune and compile
        torch.cuda.synchronize()
        torch.cuda.nvtx.range_push(f"measured_{bits}_{name}")
        product()
        torch.cuda.synchronize()
        torch.cuda.nvtx.range_pop()
