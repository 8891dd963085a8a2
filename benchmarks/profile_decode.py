"""Where the fast path's time goes on the GPU (7B shapes, random bf16 weights, batch 1); see RESULTS.md.

- `gemv`: weight-streaming bandwidth of the Triton matrix-vector ops (decode_kernels.py) against cuBLAS (F.linear) on
  the Llama-2-7B shapes, weights rotated so that the 50 MB L2 cache cannot serve them, each timed as a CUDA graph;
- `ttft`: time to first token split into the tower and the prefill, eager against CUDA-graphed, and the prefill's
  kernels by GPU time (launched one by one);
- `step`: one decode step's CUDA-graph replay time, and its kernels by GPU time (launched one by one, unrecorded,
  so that the profiler names each);
- `rows`: decode step time at 1 to 64 rows, continuous batching's shared cache against one sized to the batch, and
  the 64-row step's kernels;
- `prefills`: what a server's prefill of a group of requests costs (continuous_batching.py): the tower and the
  language model's prefill into continuous batching's 64-row cache, eager (as groups run) against CUDA-graphed, by
  group size, with the compute rate reached;
- `attention`: the decode step's attention (decode_attention.py: the new token's rotary embedding, its cache writes
  and the attention in one launch) against the same in torch ops with SDPA over the whole cache, one layer of the 7B
  shape, by rows, cache length and how much of the cache the rows have filled;
- `quantized`: the int8 and int4 kernels (quantized_decode_kernels.py) on the same shapes, bytes read per second
  (codes, scales and offsets) for each block-size configuration tried, at 1, 8, 32 and 96 rows (a prompt).

`--quantize int8|int4` runs `ttft`, `step`, `rows` and `prefills` over the quantized projections
(weight_quantization.py) instead of bf16, so that a quantized decode step's kernels can be read beside bf16's.

    python benchmarks/profile_decode.py gemv ttft step --output profile.jsonl   # one H100: about 2 minutes
    python benchmarks/profile_decode.py step --quantize int8 --output profile.jsonl
"""

import argparse
import os
import statistics
import sys

import torch
import torch.nn.functional as F
import triton

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_records import append_record  # noqa: E402
from bench_generate import build_model, copy_bandwidth, make_inputs, timed  # noqa: E402
from decode_attention import reference_step_attention, step_attention  # noqa: E402
from decode_kernels import gated_matvec, stacked_matvec  # noqa: E402
from fast_decoder import GraphedCall, LlamaFamilyDecoder, layer_forward  # noqa: E402
from fast_generation import FastGenerator, padded_prompt_length  # noqa: E402
from quantized_decode_kernels import (  # noqa: E402
    ROWS_CONFIGS, ROWS_TILES, kernel_config, launch_quantized_kernel, packed_weight, row_bucket, tile_of,
)
from weight_quantization import QUANTIZE_BITS, quantize_named  # noqa: E402


def replay_seconds(function, repeats: int = 20) -> float:
    """Median seconds per replay of `function` captured as a CUDA graph."""
    graphed = GraphedCall(function)
    graphed()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graphed.graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def gemv_bandwidths(record) -> None:
    shapes = {"q or o (4096x4096)": [(4096, 4096)], "q|k|v in one launch": [(4096, 4096)] * 3,
              "gate|up, SiLU-gated": [(11008, 4096)] * 2, "down (4096x11008)": [(4096, 11008)],
              "lm_head (32000x4096)": [(32000, 4096)]}
    copies = 6
    for name, parts in shapes.items():
        sets = [[torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for n, k in parts] for _ in range(copies)]
        x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
        if "gated" in name:
            def ours(weights):
                return gated_matvec(x, *weights)

            def cublas(weights):
                return F.silu(F.linear(x, weights[0])) * F.linear(x, weights[1])
        else:
            def ours(weights):
                return stacked_matvec(x, weights)

            def cublas(weights):
                return torch.cat([F.linear(x, w) for w in weights], -1)
        reference = cublas(sets[0]).float()
        difference = ((ours(sets[0]).float() - reference).norm() / reference.norm()).item()
        nbytes = sum(n * k * 2 for n, k in parts) * copies
        record(kind="gemv", shape=name, cublas_TBps=nbytes / replay_seconds(lambda: [cublas(w) for w in sets]) / 1e12,
               ours_TBps=nbytes / replay_seconds(lambda: [ours(w) for w in sets]) / 1e12,
               relative_difference=difference)


# One row: block sizes (rows, inputs a step, warps) and conversions tried beside the autotuned launch, a wider sweep
# than autotune's own list (ROW_CONFIGS), from which that list is chosen.
SWEEP_ROW_CONFIGS = [{"BLOCK_M": 1, "BLOCK_N": n, "BLOCK_K": k, "BIT_CAST": bit_cast, "num_warps": warps}
                     for n, k, warps in ((4, 512, 1), (4, 512, 2), (4, 1024, 2), (8, 512, 2), (8, 256, 1),
                                         (16, 256, 2), (4, 512, 4), (4, 1024, 4), (8, 512, 4), (8, 1024, 4),
                                         (16, 512, 4), (8, 1024, 8), (16, 1024, 8), (32, 512, 8))
                     for bit_cast in (False, True)]


def several_rows_configs(rows: int, bits: int) -> list[dict]:
    """Autotune's candidates for this kind and bucket of rows (ROWS_TILES), then variants of `kernel_config`'s tile:
    other widths and depths, more warps, weights first; for int4 also wider tiles on 8 warps."""
    tiles = ROWS_TILES[(bits, row_bucket(rows))]
    candidates = [config for config in ROWS_CONFIGS if tile_of(config) in tiles]
    chosen = kernel_config(rows, bits)
    variants = [{"BLOCK_N": 32}, {"BLOCK_N": 128}, {"num_warps": 8}, {"BLOCK_K": 512 if bits == 4 else 256},
                {"WEIGHTS_FIRST": True, "BLOCK_N": 32}]
    if bits == 8:
        variants.append({"BLOCK_K": 64})
    else:
        variants += [{"BLOCK_N": n, "BLOCK_K": k, "num_warps": warps} for n, k, warps in ((64, 512, 8), (128, 256, 8))]
    return candidates + [{**chosen, **variant} for variant in variants]


def rotated_quantized_weights(bits: int, parts: list[tuple[int, int]], copies: int = 6) -> tuple[list, int]:
    """`copies` sets of random quantized weights of the (rows, inputs) `parts` (one launch's stacked weights), to be
    read in turn so that the L2 cache cannot serve them, and the bytes of codes, scales and offsets of all sets."""
    sets = []
    for _ in range(copies):
        sets.append([packed_weight(torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5, bits)
                     for n, k in parts])
    tensors = [t for weights in sets for weight in weights for t in weight if t is not None]
    return sets, sum(t.numel() * t.element_size() for t in tensors)


def quantized_bandwidths(record) -> None:
    shapes = {"q|k|v in one launch": [(4096, 4096)] * 3, "o (4096x4096)": [(4096, 4096)],
              "gate|up in one launch": [(11008, 4096)] * 2, "down (4096x11008)": [(4096, 11008)]}
    copies = 6
    for bits in (8, 4):
        for name, parts in shapes.items():
            sets, nbytes = rotated_quantized_weights(bits, parts, copies)
            for rows in (1, 8, 32, 96):
                x = torch.randn(rows, parts[0][1], device="cuda", dtype=torch.bfloat16)
                configs = [None] + (SWEEP_ROW_CONFIGS if rows == 1 else several_rows_configs(rows, bits))
                for config in configs:  # None: what the fast path launches (autotuned at one row)
                    try:
                        seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w, config) for w in sets])
                    except triton.runtime.errors.OutOfResources as error:  # tiles too large for this GPU
                        record(kind="quantized", bits=bits, shape=name, rows=rows, config=config, error=str(error))
                        continue
                    record(kind="quantized", bits=bits, shape=name, rows=rows, config=config or "fast path",
                           TBps=nbytes / seconds / 1e12, us=seconds / copies * 1e6)


def attention_times(record) -> None:
    """The decode step's attention launch against torch ops with SDPA (rotate, write the new key and value, attend
    with the cache's mask), per layer (32 heads of 128), 8 caches rotated so that the 50 MB L2 cache cannot serve
    them, each timed as a CUDA graph; bytes: the filled slots' keys and values."""
    heads, head_dim, copies, scale = 32, 128, 8, 128 ** -0.5
    for rows in (1, 8, 32):
        for length in (512, 2048):
            caches = [[torch.randn(rows, heads, length, head_dim, device="cuda", dtype=torch.bfloat16)
                       for _ in range(2)] for _ in range(copies)]
            query, key, value = (torch.randn(rows, heads, head_dim, device="cuda", dtype=torch.bfloat16)
                                 for _ in range(3))
            cos, sin = (torch.rand(rows, head_dim, device="cuda", dtype=torch.bfloat16) for _ in range(2))
            for filled in (0.25, 1.0):
                slots = torch.full((rows,), int(length * filled) - 1, device="cuda")
                mask = torch.arange(length, device="cuda")[None, :] <= slots[:, None]
                arguments = dict(query=query, key=key, value=value, cos=cos, sin=sin, mask=mask, slots=slots,
                                 scale=scale)
                sdpa = replay_seconds(lambda: [reference_step_attention(**arguments, key_cache=key_cache,
                                                                        value_cache=value_cache)
                                               for key_cache, value_cache in caches]) / copies
                ours = replay_seconds(lambda: [step_attention(**arguments, key_cache=key_cache,
                                                              value_cache=value_cache)
                                               for key_cache, value_cache in caches]) / copies
                read = 2 * rows * heads * int(length * filled) * head_dim * 2
                record(kind="attention", rows=rows, cache_length=length, filled=filled, sdpa_us=sdpa * 1e6,
                       ours_us=ours * 1e6, speedup=sdpa / ours, ours_TBps=read / ours / 1e12)


def ttft_parts(model, fast: FastGenerator, record) -> None:
    inputs = make_inputs(model, 1)
    fast.generate(**inputs, max_new_tokens=4, eos_token_id=[])
    pixels = inputs["pixel_values"]
    embeds = model.embed_inputs(inputs["input_ids"], pixels)
    length = embeds.shape[1]
    padding = padded_prompt_length(length) - length  # left-padded as FastGenerator does
    embeds = F.pad(embeds, (0, 0, padding, 0))
    mask = F.pad(inputs["attention_mask"], (padding, 0))
    positions = F.pad(torch.arange(length, device="cuda"), (padding, 0))[None]
    decoder = fast._decoder_for(1, embeds.shape[1] + 4)
    graphed_prefill = timed(lambda: decoder.prefill(embeds, mask, positions), 10)
    decoder.layer = layer_forward
    eager_prefill = timed(lambda: decoder._prefill(embeds, positions, torch.arange(1, device="cuda")), 10)
    decoder.layer = fast.layer
    kernel_table(lambda: decoder._prefill(embeds, positions, torch.arange(1, device="cuda")), record,
                 rows=embeds.shape[1], phase="prefill")
    record(kind="ttft_parts", mode=model.config.image_mode,
           tower_eager_ms=timed(lambda: model.encode_images(pixels), 10) * 1e3,
           tower_graph_ms=timed(lambda: fast._encode_images(pixels), 10) * 1e3,
           prefill_slots=embeds.shape[1], prefill_eager_ms=eager_prefill * 1e3, prefill_graph_ms=graphed_prefill * 1e3,
           whole_first_token_ms=timed(lambda: fast.generate(**inputs, max_new_tokens=1, eos_token_id=[]), 10) * 1e3)


def step_profile(fast: FastGenerator, record) -> None:
    decoder = fast._decoder_for(1, 512)
    tokens, positions = torch.tensor([5], device="cuda"), torch.tensor([100], device="cuda")
    decoder.step(tokens, positions)
    record(kind="step", cache_length=512, replay_ms=replay_seconds(
        lambda: decoder._step(tokens, positions, decoder.next_slot[:1], length=512)) * 1e3)
    kernel_table(lambda: decoder._step(tokens, positions, decoder.next_slot[:1], length=512), record, rows=1)


def rows_profile(fast: FastGenerator, record) -> None:
    """Decode step time by rows in use, reading 256 cache slots: continuous batching's decoder (64 rows x 1024 slots,
    stepping its first rows and reading its first slots) against a decoder of exactly those rows and slots."""
    shared = LlamaFamilyDecoder(fast.model.language_model, 64, 1024, fast.layer)
    for rows in (1, 8, 32, 64):
        tokens, positions = torch.full((rows,), 5, device="cuda"), torch.full((rows,), 100, device="cuda")
        exact = LlamaFamilyDecoder(fast.model.language_model, rows, 256, fast.layer)
        record(kind="rows", rows=rows, slots_read=256, shared_cache_ms=replay_seconds(
            lambda: shared._step(tokens, positions, shared.next_slot[:rows], length=256)) * 1e3,
            exact_cache_ms=replay_seconds(lambda: exact._step(tokens, positions, exact.next_slot, length=256)) * 1e3)
    kernel_table(lambda: shared._step(tokens, positions, shared.next_slot[:rows], length=256), record, rows=64)


def prefill_groups(model, fast: FastGenerator, record) -> None:
    """A group prefill of `size` prompts of the serving benchmark's length (one image + 19 words: 100 tokens, padded
    to 128), split into the tower and the language model, each eager and CUDA-graphed; TFLOP/s counts 2 x parameters
    x tokens (prompt tokens, padding included, for the language model; 257 patches an image for the tower)."""
    decoder = LlamaFamilyDecoder(model.language_model, 64, 1024, fast.layer)
    llm_parameters = sum(p.numel() for p in model.language_model.model.layers.parameters())
    tower_parameters = sum(p.numel() for p in model.vision_tower.parameters())
    length = padded_prompt_length(100)
    for size in (1, 2, 4, 8, 16, 32):
        pixels = torch.randn(size, 3, 224, 224, device="cuda", dtype=model.dtype)
        embeds = torch.randn(size, length, model.config.text_config.hidden_size, device="cuda", dtype=model.dtype)
        mask = torch.ones(size, length, dtype=torch.long, device="cuda")
        positions = torch.arange(length, device="cuda").expand(size, length)
        rows = torch.arange(size, device="cuda")
        seconds = {
            "tower_eager": timed(lambda: model.encode_images(pixels), 10),
            "tower_graph": timed(lambda: fast._encode_images(pixels), 10),
            "prefill_eager": timed(lambda: decoder.prefill(embeds, mask, positions, rows, graphed=False), 10),
            "prefill_graph": timed(lambda: decoder.prefill(embeds, mask, positions, rows, graphed=True), 10)}
        record(kind="prefill_group", size=size, prompt_slots=length, **{f"{name}_ms": value * 1e3 for name, value
                                                                          in seconds.items()},
               tower_graph_TFLOPs=2 * tower_parameters * 257 * size / seconds["tower_graph"] / 1e12,
               prefill_graph_TFLOPs=2 * llm_parameters * length * size / seconds["prefill_graph"] / 1e12)


def kernel_table(step, record, rows: int, phase: str = "step") -> None:
    """The kernels of one decode step (or prefill: `phase`) by GPU time (launched one by one, so that the profiler
    names each)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiler:
        for _ in range(5):
            step()
        torch.cuda.synchronize()
    kernels = [(event.key, event.self_device_time_total / 5, event.count / 5) for event in profiler.key_averages()
               if event.self_device_time_total > 0 and event.device_type == torch.autograd.DeviceType.CUDA]
    record(kind=f"{phase}_kernels", rows=rows, gpu_ms_per_step=sum(k[1] for k in kernels) / 1e3,
           kernels_per_step=sum(k[2] for k in kernels))
    for name, microseconds, count in sorted(kernels, key=lambda kernel: -kernel[1])[:10]:
        record(kind="kernel", phase=phase, rows=rows, name=name[:100], us_per_step=microseconds,
               launches_per_step=count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", default=["gemv", "ttft", "step"],
                        choices=["gemv", "ttft", "step", "rows", "attention", "quantized", "prefills"])
    parser.add_argument("--output", default="profile_decode.jsonl")
    parser.add_argument("--quantize", choices=["none", *QUANTIZE_BITS], default="none",
                        help="the model's projections for ttft, step, rows and prefills (quantized_decode_kernels.py)")
    args = parser.parse_args()

    def record(**fields):
        append_record(args.output, fields)

    record(kind="device", name=torch.cuda.get_device_name(), torch=torch.__version__,
           copy_bandwidth_TBps=copy_bandwidth() / 1e12, quantize=args.quantize)
    if "gemv" in args.parts:
        gemv_bandwidths(record)
    if "quantized" in args.parts:
        quantized_bandwidths(record)
    if "attention" in args.parts:
        attention_times(record)
    if not {"ttft", "step", "rows", "prefills"} & set(args.parts):
        return
    model = quantize_named(build_model("embedding"), None if args.quantize == "none" else args.quantize)
    fast = FastGenerator(model)
    if "ttft" in args.parts:
        ttft_parts(model, fast, record)
    if "step" in args.parts:
        step_profile(fast, record)
    if "rows" in args.parts:
        rows_profile(fast, record)
    if "prefills" in args.parts:
        prefill_groups(model, fast, record)


if __name__ == "__main__":
    with torch.no_grad():
        main()
