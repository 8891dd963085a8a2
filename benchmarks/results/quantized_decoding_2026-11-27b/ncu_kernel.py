"""One int4 and one int8 q|k|v product at one row, for Nsight Compute to profile (the fast path's autotuned kernels)."""
import sys, torch
sys.path.insert(0, ".")
from quantized_decode_kernels import PackedWeight, launch_quantized_kernel
from weight_quantization import quantize_int4, quantize_int8
for quantize in (quantize_int4, quantize_int8):
    stored = [quantize(torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16) / 64) for _ in range(3)]
    weights = [PackedWeight(s["qweight"], s["scale"], s.get("offset")) for s in stored]
    x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        launch_quantized_kernel(x, weights)  # autotune, then the chosen kernel
    torch.cuda.synchronize()
    torch.cuda.nvtx.range_push("measured")
    launch_quantized_kernel(x, weights)
    torch.cuda.synchronize()
    torch.cuda.nvtx.range_pop()
