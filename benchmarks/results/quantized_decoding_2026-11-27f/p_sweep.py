"""int4 several rows: one plane at a time with weights first, and whole tiles with bit-cast codes, against this
commit's autotuned launch and HEAD's; TB/s of codes, scales and offsets, 6 weight copies rotated, CUDA-graph replays."""
import json, os, sys, time
import torch, triton
sys.path.insert(0, "."); sys.path.insert(0, "benchmarks"); sys.path.insert(0, ".call23")
from profile_decode import replay_seconds
import quantized_decode_kernels as new
import old_kernels as old
from weight_quantization import quantize_int4
out = open(os.path.join(os.environ.get("OUT", "/tmp"), "kernels_planes_weights_first.jsonl"), "w")
shapes = {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
tiles = {8: [(False, 16, 64, 256, 4), (False, 16, 64, 512, 4), (False, 16, 32, 512, 4), (False, 16, 128, 512, 8),
             (False, 16, 64, 1024, 4), (True, 16, 32, 512, 4), (True, 16, 64, 256, 4)],
         32: [(False, 32, 64, 256, 4), (False, 32, 64, 512, 4), (False, 32, 128, 512, 8), (True, 32, 64, 256, 4)],
         96: [(False, 128, 64, 256, 4), (False, 128, 64, 512, 4), (False, 64, 64, 512, 4), (False, 128, 128, 256, 8),
              (False, 128, 64, 512, 8), (True, 128, 64, 128, 4), (True, 128, 64, 256, 4), (True, 64, 64, 256, 4)]}
copies = 6
start = time.time()
for name, parts in shapes.items():
    sets = []
    for _ in range(copies):
        stored = [quantize_int4(torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5) for n, k in parts]
        sets.append([new.PackedWeight(p["qweight"], p["scale"], p["offset"]) for p in stored])
    nbytes = copies * sum(t.numel() * t.element_size() for w in sets[0] for t in w if t is not None)
    for rows in (8, 32, 96):
        x = torch.randn(rows, parts[0][1], device="cuda", dtype=torch.bfloat16)
        reference = new.reference_product(x, sets[0]).float()
        trials = [("head", old, None), ("new", new, None)]
        for whole, bm, bn, bk, warps in tiles[rows]:
            trials.append(("new", new, {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "WHOLE_TILE": whole,
                                        "WEIGHTS_FIRST": True, "BIT_CAST": True, "num_warps": warps}))
        for label, module, config in trials:
            try:
                result = module.launch_quantized_kernel(x, sets[0], config).float()
                error = ((result - reference).norm() / reference.norm()).item()
                seconds = replay_seconds(lambda: [module.launch_quantized_kernel(x, w, config) for w in sets])
            except (triton.runtime.errors.OutOfResources, RuntimeError) as exc:
                print(json.dumps(dict(code=label, shape=name, rows=rows, config=config, error=str(exc)[:80])),
                      file=out, flush=True)
                continue
            record = dict(code=label, bits=4, shape=name, rows=rows, config=config or "autotuned",
                          TBps=nbytes / seconds / 1e12, us=seconds / copies * 1e6, relative_error=error)
            print(json.dumps(record), file=out, flush=True)
            c = config and (("whole" if config["WHOLE_TILE"] else "planes"), config["BLOCK_M"], config["BLOCK_N"],
                            config["BLOCK_K"], config["num_warps"])
            print(f"kern {name:8s} rows {rows:3d} {label:5s} {c or 'autotuned'} {record['TBps']:.3f} TB/s "
                  f"err {error:.1e} [{time.time() - start:.0f} s]", flush=True)
