"""Prototype (2026-11-28, twenty-third session): the next product's weights brought into L2 by a side branch of the
step's CUDA graph while the current product runs.

A one-row int4 launch costs about 3.0 us beyond its bytes (launch_cost_2026-11-28: q|k|v's weights in one launch
13.4 us, in three 19.4), and Nsight Compute has the q|k|v launch stalled on its loads (long scoreboard) with only 58%
of its warps' slots filled (its 1,536 programs are 0.73 of a wave). During each launch's start and end, and during
the attention and norms between products, the memory is idle. Here the main branch runs one row through 32 layers'
int4 products (q|k|v, o, SiLU-gated gate|up, down, the shipped launches; optionally the norm-sized kernels between
them), and a side branch, which waits for product k - 1, prefetches the first BUDGET bytes of product k + 1's codes,
scales and offsets into L2 (`prefetch.global.L2`, one a 128-byte line) while product k runs. Measured: the graph's
replay time with and without the side branch, and (upper bound) each product's time with its weights already in L2.

    python benchmarks/results/l2_prefetch_2026-11-28/side_prefetch.py --output side_prefetch.jsonl   # on a GPU
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from bench_records import append_record  # noqa: E402
from profile_decode import replay_seconds  # noqa: E402
from quantized_decode_kernels import packed_weight, quantized_gated, quantized_product  # noqa: E402

LINE = 128


@triton.jit
def prefetch_kernel(base, nbytes, LINES: tl.constexpr, ASM: tl.constexpr):
    """Asks L2 for bytes [0, nbytes) of `base` (an int8 pointer), LINES 128-byte lines a program a step."""
    step = tl.num_programs(0) * LINES * 128
    for start in range(tl.program_id(0) * LINES * 128, nbytes, step):
        where = tl.minimum(start + tl.arange(0, LINES) * 128, nbytes - 1)
        tl.inline_asm_elementwise(ASM, "=r,l", [(base + where).to(tl.int64)], dtype=tl.int32, is_pure=False, pack=1)


PREFETCH_ASM = {"L2": "prefetch.global.L2 [$1];\nmov.u32 $0, 0;",
                "L2_evict_last": "prefetch.global.L2::evict_last [$1];\nmov.u32 $0, 0;"}


def prefetch(tensors: list[torch.Tensor], *, budget: int, programs: int, kind: str) -> None:
    """The first `budget` bytes of `tensors`, in order, prefetched into L2."""
    for tensor in tensors:
        nbytes = min(tensor.numel() * tensor.element_size(), budget)
        if nbytes <= 0:
            return
        prefetch_kernel[(programs,)](tensor.view(torch.int8), nbytes, LINES=256, ASM=PREFETCH_ASM[kind], num_warps=4)
        budget -= nbytes


def layer_weights(bits: int, width: int = 4096, hidden: int = 11008) -> dict:
    def make(n: int, k: int):
        return packed_weight(torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5, bits)

    return {"qkv": [make(width, width) for _ in range(3)], "o": [make(width, width)],
            "gate_up": [make(hidden, width), make(hidden, width)], "down": [make(width, hidden)]}


def tensors_of(weights: list) -> list[torch.Tensor]:
    return [t for weight in weights for t in (weight.qweight, weight.scale, weight.offset) if t is not None]


def run_products(layers: list[dict], x: torch.Tensor, *, gaps: bool, budget: int, programs: int, kind: str):
    """One row through every layer's products on the current stream; with budget > 0, a side stream prefetching
    product k + 1 once product k - 1 is done."""
    products = [(name, layer[name]) for layer in layers for name in ("qkv", "o", "gate_up", "down")]
    main, side = torch.cuda.current_stream(), torch.cuda.Stream()
    done = [torch.cuda.Event() for _ in products]
    side.wait_stream(main)
    h = x
    for k, (name, weights) in enumerate(products):
        if budget and k + 1 < len(products):
            if k:
                side.wait_event(done[k - 1])
            with torch.cuda.stream(side):
                prefetch(tensors_of(products[k + 1][1]), budget=budget, programs=programs, kind=kind)
        if name == "qkv":
            h = quantized_product(F.rms_norm(h, (h.shape[-1],)) if gaps else h, weights)[:, :4096].contiguous()
            if gaps:  # the attention's launch, about its size
                h = h * torch.sigmoid(h)
        elif name == "o":
            h = quantized_product(h, weights)
        elif name == "gate_up":
            h = quantized_gated(F.rms_norm(h, (h.shape[-1],)) if gaps else h, *weights)
        else:
            h = quantized_product(h, weights)
        done[k].record(main)
    main.wait_stream(side)
    return h


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="side_prefetch.jsonl")
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--bits", type=int, choices=[4, 8], default=4)
    parser.add_argument("--budgets_mb", default="8,16,32", help="prefetch budgets to try, MB a product")
    parser.add_argument("--programs", default="16,66", help="prefetch launch sizes to try")
    args = parser.parse_args()
    torch.manual_seed(0)
    layers = [layer_weights(args.bits) for _ in range(args.layers)]
    nbytes = sum(t.numel() * t.element_size() for layer in layers for w in layer.values() for t in tensors_of(w))
    x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
    x_down = torch.randn(1, 11008, device="cuda", dtype=torch.bfloat16)
    calls = {"qkv": lambda w: quantized_product(x, w), "o": lambda w: quantized_product(x, w),
             "gate_up": lambda w: quantized_gated(x, *w), "down": lambda w: quantized_product(x_down, w)}
    for name, call in calls.items():  # each product, its weights in L2 (one set repeated) against 8 layers' in turn
        hot = replay_seconds(lambda: [call(layers[0][name]) for _ in range(8)]) / 8
        cold = replay_seconds(lambda: [call(layer[name]) for layer in layers[:8]]) / 8
        size = sum(t.numel() * t.element_size() for t in tensors_of(layers[0][name]))
        append_record(args.output, dict(measured="one product", bits=args.bits, product=name, MB=size / 1e6,
                                        hot_us=hot * 1e6, cold_us=cold * 1e6, hot_TBps=size / hot / 1e12,
                                        cold_TBps=size / cold / 1e12))
    variants = [dict(budget=0, programs=0, kind="L2")]
    variants += [dict(budget=int(mb) << 20, programs=int(p), kind=kind) for mb in args.budgets_mb.split(",")
                 for p in args.programs.split(",") for kind in ("L2", "L2_evict_last")]
    for gaps in (False, True):
        for repeat in range(2):
            for variant in variants:
                seconds = replay_seconds(lambda: run_products(layers, x, gaps=gaps, **variant), repeats=10)
                append_record(args.output, dict(measured="32 layers", bits=args.bits, gaps=gaps, repeat=repeat,
                                                **variant, ms=seconds * 1e3, TBps=nbytes / seconds / 1e12))


if __name__ == "__main__":
    with torch.no_grad():
        main()
