"""The one-row int4 kernel with the input staged through shared memory: RUN on one H100 (eighth session), slower than
the kept kernel on every product (kernels_input_through_shared_memory_h100.txt, RESULTS.md); dropped.

The kept kernel loads each plane's 8 inputs per thread from global memory (8 LDG.E.64 per 16 bytes of weights, 16
cache lines per warp and plane: the L1 traffic Nsight Compute found). This variant loads the step's BLOCK_K inputs
once, coalesced, reshapes them to (groups, planes, words) and multiplies a (rows, groups, planes, words) tile of codes
by them (codes converted, BIT_CAST ignored). Compiled for sm_90 offline (benchmarks/inspect_kernel.py's
compile_kernel), the loop reads the input as 8 LDS.128 from shared memory and 1-2 coalesced LDG.128, 72-77
registers, about 7.1 instructions per weight (the kept loop: 8 LDG.E.64, 7.7). Correct under Triton's interpreter
(max error 0.015 on outputs up to 3.2, bf16). A variant that summed over the planes before scaling spread the planes
across lanes (108 SHFL a loop, 16 instructions a weight) and was not pursued. Run from the repository root on a
GPU: python3 <this file>; prints TB/s, kept against variant.
"""
import importlib.util, sys, torch
sys.path.insert(0, "."); sys.path.insert(0, "benchmarks")
from profile_decode import replay_seconds
from weight_quantization import quantize_int4

BRANCH = """        if INT4 and BLOCK_M == 1:
            words = tl.arange(0, WORDS)
            planes = tl.arange(0, 8)
            accumulator = tl.zeros((BLOCK_N, STEP_GROUPS, 8, WORDS), dtype=tl.float32)
            for k0 in range(0, K, BLOCK_K):
                groups = k0 // GROUP + tl.arange(0, STEP_GROUPS)
                inside = groups[None, :] < GROUPS
                word = groups[None, :, None] * WORDS + words[None, None, :]
                packed = tl.load(q_ptr + rows[:, None, None] * (K // 8) + word, mask=inside[:, :, None], other=0,
                                 eviction_policy="evict_first")
                where = groups[None, :] * rows_in_weight + rows[:, None]
                scale = tl.load(s_ptr + where, mask=inside, other=0).to(tl.float32)[:, :, None, None]
                offset = tl.load(f_ptr + where, mask=inside, other=0).to(tl.float32)[:, :, None, None]
                x = tl.load(x_ptr + k0 + tl.arange(0, BLOCK_K), mask=k0 + tl.arange(0, BLOCK_K) < K, other=0)
                x = tl.reshape(x.to(tl.float32), (1, STEP_GROUPS, 8, WORDS))
                codes = ((packed[:, :, None, :] >> (4 * planes[None, None, :, None])) & 0xF).to(tl.float32)
                accumulator += (codes * scale + offset) * x
            total = tl.sum(tl.sum(tl.sum(accumulator, axis=3), axis=2), axis=1)
            tl.store(out_ptr + columns, total.to(out_ptr.dtype.element_ty))
"""


def load(tag: str, patched: bool):
    text = open("quantized_decode_kernels.py").read().replace("nextgpt::quantized_stacked_product", "nextgpt::" + tag)
    if patched:
        start, end = text.index("        if INT4 and BLOCK_M == 1:"), text.index("        elif INT4:")
        text = text[:start] + BRANCH + text[end:]
    path = f"/tmp/{tag}.py"
    open(path, "w").write(text)
    spec = importlib.util.spec_from_file_location(tag, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


modules = {"kept": load("kept", False), "input through shared memory": load("staged", True)}
shapes = {"qkv": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)],
          "lm_head": [(32000, 4096)]}
for shape, parts in shapes.items():
    sets = [[quantize_int4(torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5) for n, k in parts]
            for _ in range(6)]
    nbytes = 6 * sum(sum(t.numel() * t.element_size() for t in s.values()) for s in sets[0])
    x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
    for repeat in range(2):
        for name, module in modules.items():
            weights = [[module.PackedWeight(s["qweight"], s["scale"], s["offset"]) for s in w] for w in sets]
            reference = module.reference_product(x, weights[0])
            error = (module.launch_quantized_kernel(x, weights[0]).float() - reference.float()).abs().max().item()
            seconds = replay_seconds(lambda: [module.launch_quantized_kernel(x, w) for w in weights])
            print(f"{shape:8s} {name:28s} {nbytes / seconds / 1e12:.3f} TB/s  max error {error:.4f}", flush=True)
