"""Ready for the next session, not yet run: the one-row kernels' weight loads marked `.cg` (cached in L2 only, SASS
LDG.E.128.STRONG.GPU; checked offline) instead of evict-first (LDG.E.EF.128), against the shipped kernels; Triton
refuses both at once. 7B shapes, 6 weight copies rotated, CUDA-graph replays, two repeats; TB/s of codes and scales."""
import importlib.util, json, os, sys
import torch
sys.path.insert(0, "."); sys.path.insert(0, "benchmarks")
from profile_decode import replay_seconds
from weight_quantization import quantize_int4, quantize_int8

SHIPPED = open("quantized_decode_kernels.py").read()
HINT = 'eviction_policy="evict_first"'


def load(tag: str, text: str):
    text = text.replace("nextgpt::quantized_stacked_product", "nextgpt::qsp_" + tag)
    path = f"/tmp/variant_{tag}.py"
    open(path, "w").write(text)
    spec = importlib.util.spec_from_file_location(f"variant_{tag}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


assert SHIPPED.count(HINT) == 2  # the one-row int4 and int8 weight loads
modules = {"evict_first (shipped)": load("ef", SHIPPED),
           "cache_global": load("cg", SHIPPED.replace(HINT, 'cache_modifier=".cg"'))}
if len(sys.argv) > 1:  # write the .cg variant for an end-to-end run
    open(sys.argv[1], "w").write(SHIPPED.replace(HINT, 'cache_modifier=".cg"'))
    sys.exit()
shapes = {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)],
          "lm_head": [(32000, 4096)]}
out = open(os.path.join(os.environ.get("OUT", "/tmp"), "kernels_one_row_cache_global.jsonl"), "w")
for bits, quantize in ((4, quantize_int4), (8, quantize_int8)):
    for shape, parts in shapes.items():
        stored = [[quantize(torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5) for n, k in parts]
                  for _ in range(6)]
        nbytes = sum(t.numel() * t.element_size() for copy in stored for part in copy for t in part.values())
        x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
        for repeat in range(2):
            for name, module in modules.items():
                weights = [[module.PackedWeight(p["qweight"], p["scale"], p.get("offset")) for p in copy]
                           for copy in stored]
                seconds = replay_seconds(lambda: [module.launch_quantized_kernel(x, w) for w in weights])
                record = dict(bits=bits, shape=shape, variant=name, repeat=repeat, TBps=nbytes / seconds / 1e12)
                print(json.dumps(record), file=out, flush=True)
                print(bits, shape, name, repeat, round(record["TBps"], 3), flush=True)
