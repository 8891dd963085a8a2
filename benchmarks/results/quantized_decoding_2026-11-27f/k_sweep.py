"""Shipped-now autotuned launches (this commit) against HEAD's, and a few explicit tiles with other pipeline depths:
bytes of codes, scales and offsets per second, 7B shapes, 6 weight copies rotated, CUDA-graph replays."""
import json, os, sys, time
import torch, triton
sys.path.insert(0, "."); sys.path.insert(0, "benchmarks"); sys.path.insert(0, ".call23")
from profile_decode import replay_seconds
import quantized_decode_kernels as new
import old_kernels as old
from weight_quantization import quantize_int4, quantize_int8
out = open(os.path.join(os.environ.get("OUT", "/tmp"), "kernels_new_vs_head.jsonl"), "w")
shapes = {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
copies = 6
start = time.time()
for bits in (4, 8):
    for name, parts in shapes.items():
        sets = []
        for _ in range(copies):
            stored = [(quantize_int4 if bits == 4 else quantize_int8)(
                torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5) for n, k in parts]
            sets.append([new.PackedWeight(p["qweight"], p["scale"], p.get("offset")) for p in stored])
        nbytes = copies * sum(t.numel() * t.element_size() for w in sets[0] for t in w if t is not None)
        for rows in (8, 32, 64, 96, 256):
            x = torch.randn(rows, parts[0][1], device="cuda", dtype=torch.bfloat16)
            reference = new.reference_product(x, sets[0]).float()
            trials = [("head", old, None), ("new", new, None)]
            if rows in (8, 96) and os.environ.get("STAGES"):
                bm = 16 if rows == 8 else 128
                for stages in (1, 2, 4):
                    trials.append(("new", new, {"BLOCK_M": bm, "BLOCK_N": 64, "BLOCK_K": 128 if rows > 8 else 256,
                                                "WHOLE_TILE": True, "WEIGHTS_FIRST": True, "BIT_CAST": False,
                                                "num_warps": 4, "num_stages": stages}))
            for label, module, config in trials:
                try:
                    result = module.launch_quantized_kernel(x, sets[0], config).float()
                    error = ((result - reference).norm() / reference.norm()).item()
                    seconds = replay_seconds(lambda: [module.launch_quantized_kernel(x, w, config) for w in sets])
                except (triton.runtime.errors.OutOfResources, RuntimeError) as exc:
                    print(json.dumps(dict(code=label, bits=bits, shape=name, rows=rows, config=config,
                                          error=str(exc)[:80])), file=out, flush=True)
                    continue
                record = dict(code=label, bits=bits, shape=name, rows=rows, config=config or "autotuned",
                              TBps=nbytes / seconds / 1e12, us=seconds / copies * 1e6, relative_error=error)
                print(json.dumps(record), file=out, flush=True)
                print(f"kern int{bits} {name:8s} rows {rows:3d} {label:5s} {config or 'autotuned'} "
                      f"{record['TBps']:.3f} TB/s err {error:.1e} [{time.time() - start:.0f} s]", flush=True)
