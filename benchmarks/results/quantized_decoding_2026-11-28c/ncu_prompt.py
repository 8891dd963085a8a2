"""The autotuned several-row int4 launches of a 96-row prompt (q|k|v and gate|up, 7B shapes) for Nsight Compute
(d.sh), each once inside an NVTX range after autotuning."""
import sys

import torch

sys.path.insert(0, ".")
from quantized_decode_kernels import PackedWeight, launch_quantized_kernel  # noqa: E402
from weight_quantization import quantize_int4  # noqa: E402

for name, parts in (("qkv", [(4096, 4096)] * 3), ("gate_up", [(11008, 4096)] * 2)):
    stored = [quantize_int4(torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / 64) for n, k in parts]
    weights = [PackedWeight(s["qweight"], s["scale"], s["offset"]) for s in stored]
    x = torch.randn(96, 4096, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        launch_quantized_kernel(x, weights)
    torch.cuda.synchronize()
    torch.cuda.nvtx.range_push(f"measured_{name}")
    launch_quantized_kernel(x, weights)
    torch.cuda.synchronize()
    torch.cuda.nvtx.range_pop()
