"""Swapped tensor-core kernels (swap.py) against the shipped autotuned launches: bytes of codes, scales and offsets read
per second, 7B shapes, 6 weight copies rotated, CUDA-graph replays."""
import json, os, sys, time
import torch, triton
sys.path.insert(0, "."); sys.path.insert(0, "benchmarks"); sys.path.insert(0, ".call23")
from profile_decode import replay_seconds
import quantized_decode_kernels as shipped
from swap import launch
from weight_quantization import quantize_int4, quantize_int8
ROWS = [int(r) for r in sys.argv[1].split(",")]
BITS = [int(b) for b in sys.argv[2].split(",")]
out = open(os.path.join(os.environ.get("OUT", "/tmp"), f"swap_sweep_{sys.argv[1]}_{sys.argv[2]}.jsonl".replace(",", "-")), "w")
shapes = {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)], "lm_head": [(32000, 4096)]}
small = [(16, 512, 4), (16, 1024, 4), (32, 256, 4), (32, 512, 4), (32, 512, 8), (64, 256, 4), (64, 512, 4),
         (64, 512, 8), (128, 256, 8), (128, 256, 4)]
tiles = {1: small, 8: small, 32: [(32, 256, 4), (64, 256, 4), (64, 512, 8), (128, 256, 8), (128, 128, 4)],
         96: [(64, 256, 4), (128, 128, 4), (128, 256, 8), (64, 128, 4)]}
copies = 6
start = time.time()
for bits in BITS:
    for name, parts in shapes.items():
        sets = []
        for _ in range(copies):
            stored = [(quantize_int4 if bits == 4 else quantize_int8)(
                torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5) for n, k in parts]
            sets.append([shipped.PackedWeight(p["qweight"], p["scale"], p.get("offset")) for p in stored])
        nbytes = copies * sum(t.numel() * t.element_size() for w in sets[0] for t in w if t is not None)
        for rows in ROWS:
            if name == "lm_head" and rows > 1:
                continue
            x = torch.randn(rows, parts[0][1], device="cuda", dtype=torch.bfloat16)
            reference = shipped.reference_product(x, sets[0]).float()
            trials = [("shipped", None, lambda w, c: shipped.launch_quantized_kernel(x, w))]
            for block_m in ([16] if rows <= 16 else [32] if rows <= 32 else [64, 128]):
                for bn, bk, warps in tiles[rows]:
                    for evict in ([True, False] if (bn, bk, warps) == (64, 256, 4) else [rows <= 8]):
                        trials.append(("swapped", {"BLOCK_M": block_m, "BLOCK_N": bn, "BLOCK_K": bk,
                                                   "EVICT": evict, "num_warps": warps},
                                       lambda w, c: launch(x, w, c)))
            for label, config, run in trials:
                try:
                    result = run(sets[0], config).float()
                    error = ((result - reference).norm() / reference.norm()).item()
                    seconds = replay_seconds(lambda: [run(w, config) for w in sets])
                except (triton.runtime.errors.OutOfResources, RuntimeError) as exc:
                    print(json.dumps(dict(code=label, bits=bits, shape=name, rows=rows, config=config,
                                          error=str(exc)[:80])), file=out, flush=True)
                    continue
                record = dict(code=label, bits=bits, shape=name, rows=rows, config=config,
                              TBps=nbytes / seconds / 1e12, us=seconds / copies * 1e6, relative_error=error)
                print(json.dumps(record), file=out, flush=True)
                print(f"sweep int{bits} {name:8s} rows {rows:3d} {label:8s} {config} {record['TBps']:.3f} TB/s "
                      f"err {error:.1e} [{time.time() - start:.0f} s]", flush=True)
