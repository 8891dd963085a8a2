"""Where a batch-1 decode step of the 7B shape spends its time (exploration for issue 5; H100).

1. GEMV bandwidth per weight shape: cuBLAS (F.linear) on separate and fused (q|k|v, gate|up) shapes, and a Triton GEMV.
2. The lean decoder's step (fast_decoder.py) as a CUDA graph: as shipped, and with fused q|k|v and gate|up weights.
3. A kernel-time profile of one step, and time to first token split into tower and prefill.
"""

import json
import os
import statistics
import sys
import time
from typing import NamedTuple

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_generate import build_model, copy_bandwidth, make_inputs, timed  # noqa: E402
import fast_decoder  # noqa: E402
from fast_decoder import LlamaFamilyDecoder, apply_rotary_pos_emb, layer_forward, rms_norm  # noqa: E402
from fast_generation import FastGenerator  # noqa: E402

OUT = os.environ.get("OUT", ".")
sdpa_attend = fast_decoder.attend


def report(**fields):
    print(json.dumps(fields), flush=True)
    with open(os.path.join(OUT, "explore.jsonl"), "a") as handle:
        handle.write(json.dumps(fields) + "\n")


def graph_time(function, repeats: int = 20) -> float:
    """Seconds per call of `function`, captured into a CUDA graph and replayed."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        function()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        function()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def gemv_bandwidths():
    from decode_kernels import gated_matvec, stacked_matvec
    shapes = {"q/o 4096x4096": [(4096, 4096)], "q|k|v": [(4096, 4096)] * 3, "gate|up (gated)": [(11008, 4096)] * 2,
              "down": [(4096, 11008)], "lm_head": [(32000, 4096)]}
    copies = 6  # rotate weights so the 50 MB L2 does not serve them
    for name, parts in shapes.items():
        sets = [[torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for n, k in parts] for _ in range(copies)]
        x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
        nbytes = sum(n * k * 2 for n, k in parts) * copies
        if "gated" in name:
            ours = lambda: [gated_matvec(x, *weights) for weights in sets]  # noqa: E731
            cublas = lambda: [F.silu(F.linear(x, w[0])) * F.linear(x, w[1]) for w in sets]  # noqa: E731
            check = (gated_matvec(x, *sets[0]), F.silu(F.linear(x, sets[0][0])) * F.linear(x, sets[0][1]))
        else:
            ours = lambda: [stacked_matvec(x, weights) for weights in sets]  # noqa: E731
            cublas = lambda: [[F.linear(x, w) for w in weights] for weights in sets]  # noqa: E731
            check = (stacked_matvec(x, sets[0]), torch.cat([F.linear(x, w) for w in sets[0]], -1))
        error = ((check[0].float() - check[1].float()).norm() / check[1].float().norm()).item()
        report(kind="gemv", shape=name, cublas_TBps=nbytes / graph_time(cublas) / 1e12,
               ours_TBps=nbytes / graph_time(ours) / 1e12, relative_difference=error)
        del sets


class FusedWeights(NamedTuple):
    input_norm: torch.Tensor
    qkv: torch.Tensor
    o: torch.Tensor
    post_norm: torch.Tensor
    gate_up: torch.Tensor
    down: torch.Tensor


def fused_layer_forward(hidden, cos, sin, weights, key_cache, value_cache, slots, mask, shape, attend_cache):
    batch, length, _ = hidden.shape
    normed = rms_norm(hidden, weights.input_norm, shape.eps)
    query, key, value = F.linear(normed, weights.qkv).split(
        [shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim, shape.kv_heads * shape.head_dim], -1)
    query = query.view(batch, length, shape.heads, shape.head_dim)
    key = key.view(batch, length, shape.kv_heads, shape.head_dim)
    value = value.view(batch, length, shape.kv_heads, shape.head_dim).transpose(1, 2)
    query, key = apply_rotary_pos_emb(query.transpose(1, 2), key.transpose(1, 2), cos, sin)
    key_cache.index_copy_(2, slots, key)
    value_cache.index_copy_(2, slots, value)
    if attend_cache:
        key, value = key_cache, value_cache
    attention = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=shape.scaling)
    hidden = hidden + F.linear(attention.transpose(1, 2).reshape(batch, length, -1), weights.o)
    normed = rms_norm(hidden, weights.post_norm, shape.eps)
    gate, up = F.linear(normed, weights.gate_up).chunk(2, dim=-1)
    return hidden + F.linear(F.silu(gate) * up, weights.down)


def eager_style_attention(query, key, value, mask, scaling):
    """transformers' "eager" attention: bf16 scores, float32 softmax."""
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.matmul(torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype), value)


def step_speed(model, variant: str, cache_length: int = 512, profile: bool = False,
               mode: str | None = None):
    start = time.perf_counter()
    torch._dynamo.reset()
    fast_decoder.attend = eager_style_attention if "eager-attention" in variant else sdpa_attend
    torch._inductor.config.coordinate_descent_tuning = "coordinate" in variant
    if variant == "fused":
        layer = torch.compile(fused_layer_forward, fullgraph=True, mode=mode)
    else:
        layer = torch.compile(layer_forward, fullgraph=True, mode=mode)
    decoder = LlamaFamilyDecoder(model.language_model, 1, cache_length, layer)
    if variant == "fused":
        decoder.layers = [FusedWeights(w.input_norm, torch.cat([w.q, w.k, w.v]), w.o, w.post_norm,
                                       torch.cat([w.gate, w.up]), w.down) for w in decoder.layers]
    tokens = torch.tensor([5], device="cuda")
    decoder.filled[:, :100] = True
    decoder.step(tokens, torch.tensor([100], device="cuda"), 100)
    compile_seconds = time.perf_counter() - start
    times = []
    for _ in range(5):
        torch.cuda.synchronize()
        begin = time.perf_counter()
        for slot in range(101, 201):
            decoder.step(tokens, torch.tensor([slot], device="cuda"), slot)
        torch.cuda.synchronize()
        times.append((time.perf_counter() - begin) / 100)
    seconds = statistics.median(times)
    report(kind="step", variant=variant, mode=mode, cache_length=cache_length, ms_per_token=seconds * 1e3,
           tokens_per_s=1 / seconds, first_call_s=compile_seconds)
    if profile:  # the same kernels as the graph, launched one by one so the profiler names each
        from torch.profiler import ProfilerActivity, profile as torch_profile
        with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiler:
            for slot in range(201, 206):
                decoder._step(tokens[:, None], torch.tensor([[slot]], device="cuda"),
                              torch.tensor([slot], device="cuda"))
            torch.cuda.synchronize()
        kernels = [(a.key, a.self_device_time_total / 5, a.count / 5) for a in profiler.key_averages()
                   if a.self_device_time_total > 0]
        report(kind="profile", variant=variant, kernel_ms_per_token=sum(k[1] for k in kernels) / 1e3,
               kernels_per_token=sum(k[2] for k in kernels))
        for name, total, count in sorted(kernels, key=lambda kernel: -kernel[1])[:14]:
            report(kind="kernel", variant=variant, name=name[:90], us_per_token=total, calls_per_token=count)
    del decoder


def ttft_parts(model):
    inputs = make_inputs(model, 1)
    fast = FastGenerator(model)
    start = time.perf_counter()
    fast.generate(**inputs, max_new_tokens=4, eos_token_id=[])
    first_call = time.perf_counter() - start
    pixels = inputs["pixel_values"]
    tower_eager = timed(lambda: model.encode_images(pixels), 10)
    tower_graph = timed(lambda: fast._encode_images(pixels), 10)
    embeds = model.embed_inputs(inputs["input_ids"], pixels)
    decoder = fast._decoder_for(1, inputs["input_ids"].shape[1] + 4)
    positions = torch.arange(inputs["input_ids"].shape[1], device="cuda")[None]
    prefill = timed(lambda: decoder.prefill(embeds, inputs["attention_mask"], positions), 10)
    decoder.layer = layer_forward
    prefill_eager = timed(lambda: decoder.prefill(embeds, inputs["attention_mask"], positions), 10)
    decoder.layer = fast.layer
    hf_prefill = timed(lambda: model.language_model(inputs_embeds=embeds, logits_to_keep=1), 10)
    whole = timed(lambda: fast.generate(**inputs, max_new_tokens=1, eos_token_id=[]), 10)
    report(kind="ttft", mode=model.config.image_mode, first_call_s=first_call, tower_eager_ms=tower_eager * 1e3,
           tower_graph_ms=tower_graph * 1e3, compiled_prefill_ms=prefill * 1e3, eager_prefill_ms=prefill_eager * 1e3,
           hf_prefill_ms=hf_prefill * 1e3, fast_generate_1_token_ms=whole * 1e3)


def main(parts):
    report(kind="device", name=torch.cuda.get_device_name(), torch=torch.__version__,
           bandwidth_TBps=copy_bandwidth() / 1e12)
    if "gemv" in parts:
        gemv_bandwidths()
    model = build_model("embedding")
    if "ttft" in parts:
        ttft_parts(model)
    for variant in parts:
        if variant.startswith("step:"):
            mode = "max-autotune-no-cudagraphs" if "autotune" in variant else None
            step_speed(model, variant[5:], profile="profile" in variant, mode=mode)


if __name__ == "__main__":
    with torch.no_grad():
        main(sys.argv[1:] or ["gemv", "ttft", "step:lean", "step:fused"])
