"""int4 one-row candidates whose threads hold several rows (the input shared in registers) against the current best."""
import json, os, sys, torch
sys.path.insert(0, "."); sys.path.insert(0, "benchmarks")
from profile_decode import replay_seconds
from quantized_decode_kernels import PackedWeight, launch_quantized_kernel
from weight_quantization import quantize_int4
shapes = {"qkv": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
configs = [None] + [{"BLOCK_M": 1, "BLOCK_N": n, "BLOCK_K": k, "BIT_CAST": b, "num_warps": w} for n, k, w, b in
           ((8, 1024, 8, True), (8, 512, 4, False), (8, 4096, 4, True), (8, 4096, 4, False), (4, 4096, 4, True),
            (4, 2048, 2, True), (8, 2048, 2, True), (2, 4096, 4, True), (4, 4096, 8, True), (2, 2048, 2, True))]
out = open(os.path.join(os.environ["OUT"], "candidates.jsonl"), "w")
for name, parts in shapes.items():
    sets = []
    for _ in range(6):
        stored = [quantize_int4(torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5) for n, k in parts]
        sets.append([PackedWeight(p["qweight"], p["scale"], p["offset"]) for p in stored])
    nbytes = 6 * sum(t.numel() * t.element_size() for t in sets[0][0]) * len(parts)
    x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
    for config in configs:
        try:
            seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w, config) for w in sets])
        except Exception as error:
            print(name, config, "error", str(error)[:100]); continue
        record = {"shape": name, "config": config or "fast path", "TBps": nbytes / seconds / 1e12}
        out.write(json.dumps(record) + "\n")
        print(name, "fast path" if config is None else (config["BLOCK_N"], config["BLOCK_K"], config["num_warps"], config["BIT_CAST"]), round(record["TBps"], 2), flush=True)
