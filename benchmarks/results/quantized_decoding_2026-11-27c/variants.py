"""int4/int8 one-row kernels: HEAD's layout against the new (groups, rows, words) layout, cache hints, and a sweep of
the new layout's block sizes; 7B shapes, 6 weight copies rotated (L2 cannot serve them), CUDA-graph replays."""
import importlib.util, json, os, sys, torch, triton
sys.path.insert(0, "."); sys.path.insert(0, "benchmarks")
from profile_decode import replay_seconds
from weight_quantization import quantize_int4, quantize_int8

NEW = open("quantized_decode_kernels.py").read()
HEAD = open(".call21/head_quantized_decode_kernels.py").read()
TILE = "mask=inside[None, :], other=0)\n                where"
X4 = "x = tl.load(x_ptr + first_input + plane * WORDS, mask=inside[:, :, None], other=0"
X8 = "x = tl.load(x_ptr + inputs, mask=inside, other=0"
VARIANTS = {"HEAD": (HEAD, []), "new": (NEW, []),
            "new, tiles evict_first": (NEW, [(TILE, TILE.replace("other=0)", 'other=0, eviction_policy="evict_first")'))]),
            "new, x evict_last": (NEW, [(X4, X4 + ', eviction_policy="evict_last"'), (X8, X8 + ', eviction_policy="evict_last"')])}
def load(name, source, patches):
    tag = "v%d" % list(VARIANTS).index(name)
    text = source.replace("nextgpt::quantized_stacked_product", "nextgpt::qsp_" + tag)
    for old, new in patches:
        assert text.count(old) == 1, (name, old)
        text = text.replace(old, new)
    path = f"/tmp/variant_{tag}.py"
    open(path, "w").write(text)
    spec = importlib.util.spec_from_file_location(f"variant_{tag}", path)
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module
modules = {name: load(name, *value) for name, value in VARIANTS.items()}
from profile_decode import SWEEP_ROW_CONFIGS as SWEEP
shapes = {"qkv": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)],
          "lm_head": [(32000, 4096)]}
out = open(os.path.join(os.environ["OUT"], "kernels.jsonl"), "w")
def emit(**record):
    out.write(json.dumps(record) + "\n"); out.flush()
    print(record["bits"], record["shape"], record["variant"], record.get("config", ""), round(record["TBps"], 3), flush=True)
for bits, quantize in ((4, quantize_int4), (8, quantize_int8)):
    for shape, parts in shapes.items():
        sets = [[quantize(torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5) for n, k in parts]
                for _ in range(6)]
        nbytes = 6 * sum(sum(t.numel() * t.element_size() for t in s.values()) for s in sets[0])
        def packed(module):
            return [[module.PackedWeight(s["qweight"], s["scale"], s.get("offset")) for s in w] for w in sets]
        for rows in (1, 8, 32):
          x = torch.randn(rows, parts[0][1], device="cuda", dtype=torch.bfloat16)
          for repeat in range(2):
            for name, module in modules.items():
                if rows > 1 and name == "new, x evict_last":
                    continue
                weights = packed(module)
                seconds = replay_seconds(lambda: [module.launch_quantized_kernel(x, w) for w in weights])
                emit(bits=bits, shape=f"{shape} rows {rows}", variant=name, repeat=repeat, TBps=nbytes / seconds / 1e12)
        x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
        if True:
            weights = packed(modules["new"])
            for config in SWEEP:
                try:
                    seconds = replay_seconds(lambda: [modules["new"].launch_quantized_kernel(x, w, config) for w in weights])
                except triton.runtime.errors.OutOfResources:
                    continue
                emit(bits=bits, shape=shape, variant="new sweep", config=config, TBps=nbytes / seconds / 1e12)
