"""What the residual add + RMSNorm by the last program costs a batch-1 layer: the four one-row products of a 7B layer
in the decoder's order (q|k|v, o, gate|up gated, down), replayed from a CUDA graph over weight copies (>= 200 MB a
product, so that L2 cannot hold them), three ways:
- fused: o and down add the residual and normalise in their launch (the last program; the shipped way);
- separate: o and down are plain products, then `decode_kernels.residual_norm` compiled (Inductor, as the decoder
  compiled it before the fusion);
- none: o and down are plain products, no add or norm at all: the bound of any way that moves the norm elsewhere
  (into the next product's programs, say) at no cost.
Microseconds a layer, int4 and int8, with the one-row products on the dp4a kernels (as shipped on sm_80 and later).

    python benchmarks/results/norm_tail_2026-11-29/chain.py --output chain.jsonl   # one GPU
"""
import argparse
import math
import os
import sys

import torch

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.dirname(BENCHMARKS), BENCHMARKS]

import quantized_decode_kernels as kernels  # noqa: E402
from bench_records import append_record  # noqa: E402
from decode_kernels import residual_norm  # noqa: E402
from profile_decode import replay_seconds  # noqa: E402

HIDDEN, INTERMEDIATE = 4096, 11008
LAYER = {"q|k|v": ([HIDDEN] * 3, HIDDEN), "o": ([HIDDEN], HIDDEN), "gate|up": ([INTERMEDIATE] * 2, HIDDEN),
         "down": ([HIDDEN], INTERMEDIATE)}


def layer_copies(bits: int) -> list[dict]:
    """Copies of one layer's packed weights, enough that each product's copies pass 200 MB."""
    layer_bytes = min(sum(sizes) * width for sizes, width in LAYER.values()) // (2 if bits == 4 else 1)
    copies = max(6, math.ceil(200e6 / layer_bytes))
    base = {name: [torch.randn(rows, width, device="cuda", dtype=torch.bfloat16) / width**0.5 for rows in sizes]
            for name, (sizes, width) in LAYER.items()}
    return [{name: [kernels.packed_weight(w + i / w.shape[1], bits) for w in weights]
             for name, weights in base.items()} for i in range(copies)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="chain.jsonl")
    args = parser.parse_args()
    residual = torch.randn(1, HIDDEN, device="cuda", dtype=torch.bfloat16)
    norm = torch.rand(HIDDEN, device="cuda", dtype=torch.bfloat16) + 0.5
    compiled_residual_norm = torch.compile(residual_norm)
    for bits in (4, 8):
        layers = layer_copies(bits)

        def add_norm(x, weight, way):
            if way == "fused":
                return kernels.quantized_residual_norm(x, weight, residual=residual, norm=norm, eps=1e-5)[1]
            product = kernels.quantized_product(x, [weight])
            if way == "separate":
                return compiled_residual_norm(residual, product, norm=norm, eps=1e-5)[1]
            return product

        def layer(x, weights, way):
            qkv = kernels.quantized_product(x, weights["q|k|v"])
            normed = add_norm(qkv[:, :HIDDEN].contiguous(), weights["o"][0], way)  # attention's output stands in
            act = kernels.quantized_gated(normed, *weights["gate|up"])
            return add_norm(act, weights["down"][0], way)

        def layers_in_turn(way):
            x = residual
            for weights in layers:
                x = layer(x, weights, way)
            return x

        for way in ("fused", "separate", "none"):
            layers_in_turn(way)  # compiled and tuned before the graph's capture
            us = replay_seconds(lambda: layers_in_turn(way)) / len(layers) * 1e6
            append_record(args.output, dict(bits=bits, way=way, us_a_layer=us, layers=len(layers)))
            print(f"int{bits} {way}: {us:.2f} us a layer", flush=True)


if __name__ == "__main__":
    with torch.no_grad():
        main()
