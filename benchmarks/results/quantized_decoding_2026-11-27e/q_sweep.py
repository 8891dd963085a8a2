"""int4 several-row kernels: the tile dequantized whole (this commit) against one plane at a time (HEAD, old_kernels),
bytes of codes, scales and offsets read per second, 7B shapes, 6 weight copies rotated, CUDA-graph replays."""
import json, os, sys
import torch, triton
sys.path.insert(0, "."); sys.path.insert(0, "benchmarks"); sys.path.insert(0, ".call23")
from profile_decode import replay_seconds
import quantized_decode_kernels as new
import old_kernels as old
from weight_quantization import quantize_int4
out = open(os.path.join(os.environ.get("OUT", "/tmp"), "sweep_several_rows.jsonl"), "w")
shapes = {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
copies = 6
for name, parts in shapes.items():
    sets = []
    for _ in range(copies):
        stored = [quantize_int4(torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5) for n, k in parts]
        sets.append([new.PackedWeight(p["qweight"], p["scale"], p["offset"]) for p in stored])
    nbytes = copies * sum(t.numel() * t.element_size() for t in sets[0][0] if t is not None) * len(parts)
    for rows in (8, 32, 96):
        x = torch.randn(rows, parts[0][1], device="cuda", dtype=torch.bfloat16)
        reference = new.reference_product(x, sets[0]).float()
        block_ms = [16 if rows <= 16 else 32 if rows <= 32 else 64] + ([128] if rows > 64 else [])
        trials = [("old", old, old.kernel_config(rows, 4)), ("new", new, new.kernel_config(rows, 4))]
        tiles = [(32, 256, 4), (64, 128, 4), (64, 256, 4), (64, 256, 8), (64, 512, 4), (64, 512, 8), (128, 128, 4),
                 (128, 256, 4), (128, 256, 8)]
        for bm in block_ms:
            for bn, bk, warps in tiles:
                trials.append(("new", new, {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "BIT_CAST": False, "num_warps": warps}))
            trials.append(("new", new, {"BLOCK_M": bm, "BLOCK_N": 64, "BLOCK_K": 256, "BIT_CAST": True, "num_warps": 4}))
        for label, module, config in trials:
            try:
                result = module.launch_quantized_kernel(x, sets[0], config).float()
                error = ((result - reference).norm() / reference.norm()).item()
                seconds = replay_seconds(lambda: [module.launch_quantized_kernel(x, w, config) for w in sets])
            except (triton.runtime.errors.OutOfResources, RuntimeError) as exc:
                print(json.dumps(dict(code=label, shape=name, rows=rows, config=config, error=str(exc)[:80])), file=out, flush=True)
                continue
            record = dict(code=label, shape=name, rows=rows, config=config, TBps=nbytes / seconds / 1e12,
                          us=seconds / copies * 1e6, relative_error=error)
            print(json.dumps(record), file=out, flush=True)
            print(f"sweep {name:8s} rows {rows:3d} {label} {config} {record['TBps']:.3f} TB/s err {error:.1e}", flush=True)
