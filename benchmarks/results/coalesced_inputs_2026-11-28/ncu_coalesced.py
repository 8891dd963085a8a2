"""The shipped one-row int4 q|k|v launch and the coalesced prototype's, once each in NVTX ranges for Nsight Compute."""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from next_coalesced import coalesced_product, stacked  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel, packed_weight  # noqa: E402

weights = [packed_weight(torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16) / 64, 4) for _ in range(3)]
x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
config = {"BLOCK_N": 8, "GROUPS": 8, "num_warps": 4, "SCALES_IN_ASM": True, "HINT": ""}
whole = stacked(weights)
calls = {"shipped": lambda: launch_quantized_kernel(x, weights),
         "coalesced": lambda: coalesced_product(x, whole, config)}
with torch.no_grad():
    for name, call in calls.items():
        for _ in range(3):
            call()  # autotune and compile
        torch.cuda.synchronize()
        torch.cuda.nvtx.range_push(f"measured_{name}")
        call()
        torch.cuda.synchronize()
        torch.cuda.nvtx.range_pop()
