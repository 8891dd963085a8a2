"""Prototype (2026-11-28, sixteenth session): several-row int4 products with the inputs split among programs
(split-K), partial sums added atomically in float32, against the shipped autotuned launch. Nsight Compute found the
96-row prompt launches with one 4-warp program an SM (255 registers) and 96-172 programs for 132 SMs (q|k|v, gate|up):
splitting K gives narrow weights more programs. One weight a launch (q|k|v and gate|up as one stacked weight of the
same bytes); 6 weight copies rotated, CUDA-graph replays, TB/s of codes, scales and offsets. `python next_split_k.py
check` runs a small case under Triton's interpreter."""
import itertools
import json
import os
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
import quantized_decode_kernels as kernels  # noqa: E402
from quantized_decode_kernels import _int4_pair_tile, _pair_order_kernel, _tile_product  # noqa: E402


@triton.jit
def split_k_kernel(x_ptr, out_ptr, q_ptr, s_ptr, f_ptr, M, N, K: tl.constexpr, GROUP: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, SPLIT: tl.constexpr,
                   WEIGHTS_FIRST: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    STEPS: tl.constexpr = (K + BLOCK_K - 1) // BLOCK_K
    PER: tl.constexpr = (STEPS + SPLIT - 1) // SPLIT
    first = tl.program_id(2) * PER
    if WEIGHTS_FIRST:
        accumulator = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    else:
        accumulator = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for step in range(first, tl.minimum(first + PER, STEPS)):
        k0 = step * BLOCK_K
        inputs = k0 + tl.arange(0, BLOCK_K)
        weights = _int4_pair_tile(q_ptr, s_ptr, f_ptr, rows, N, k0, x_ptr.dtype.element_ty, K, GROUP, BLOCK_N,
                                  BLOCK_K)
        accumulator = _tile_product(accumulator, weights, x_ptr, m, inputs, inputs < K, M, K, WEIGHTS_FIRST)
    if WEIGHTS_FIRST:
        tl.atomic_add(out_ptr + m[None, :] * N + rows[:, None], accumulator, mask=m[None, :] < M)
    else:
        tl.atomic_add(out_ptr + m[:, None] * N + rows[None, :], accumulator, mask=m[:, None] < M)


def split_k_product(x, weight, config):
    rows, columns = x.shape
    group = kernels.group_size(weight)
    ordered = torch.empty_like(x)
    _pair_order_kernel[(rows, triton.cdiv(columns, kernels.MIN_BLOCK_K))](x, ordered, columns, group,
                                                                         kernels.MIN_BLOCK_K)
    n = weight.qweight.shape[0]
    out = torch.zeros(rows, n, device=x.device, dtype=torch.float32)
    split_k_kernel[(n // config["BLOCK_N"], triton.cdiv(rows, config["BLOCK_M"]), config["SPLIT"])](
        ordered, out, weight.qweight, weight.scale, weight.offset, rows, n, columns, group, **config)
    return out.to(x.dtype)


def packed(n, k, device):
    from weight_quantization import quantize_int4
    stored = quantize_int4(torch.randn(n, k, device=device, dtype=torch.bfloat16) / k**0.5)
    return kernels.PackedWeight(stored["qweight"], stored["scale"], stored["offset"])


if sys.argv[1] == "check":
    assert os.environ.get("TRITON_INTERPRET") == "1"
    torch.manual_seed(0)
    weight = packed(128, 448, "cpu")
    x = torch.randn(20, 448).half()
    reference = kernels.reference_product(x.float(), [weight._replace(scale=weight.scale.float(),
                                                                      offset=weight.offset.float())])
    for split, first in itertools.product((1, 2, 3), (False, True)):
        config = dict(BLOCK_M=32, BLOCK_N=64, BLOCK_K=128, SPLIT=split, WEIGHTS_FIRST=first)
        ours = split_k_product(x, weight, config).float()
        print(split, first, float((ours - reference).abs().max()), float(reference.abs().max()))
else:
    from profile_decode import replay_seconds
    SHAPES = {"q|k|v": (12288, 4096), "o": (4096, 4096), "gate|up": (22016, 4096), "down": (4096, 11008)}
    TILES = [(False, 128, 128, 128, 3), (False, 128, 128, 128, 2), (True, 128, 64, 128, 3), (False, 64, 64, 256, 3)]
    with torch.no_grad():
        for shape, (n, k) in SHAPES.items():
            weights = [packed(n, k, "cuda") for _ in range(6)]
            nbytes = sum(t.numel() * t.element_size() for w in weights for t in w)
            x = torch.randn(96, k, device="cuda", dtype=torch.bfloat16)
            reference = kernels.reference_product(x, weights[:1]).float()
            seconds = replay_seconds(lambda: [kernels.launch_quantized_kernel(x, [w]) for w in weights])
            print(json.dumps(dict(shape=shape, rows=96, config="shipped", TBps=round(nbytes / seconds / 1e12, 3))))
            for (first, bm, bn, bk, stages), split in itertools.product(TILES, (1, 2, 3, 4)):
                config = dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, SPLIT=split, WEIGHTS_FIRST=first, num_warps=4,
                              num_stages=stages)
                try:
                    seconds = replay_seconds(lambda: [split_k_product(x, w, config) for w in weights])
                    error = float((split_k_product(x, weights[0], config).float() - reference).norm()
                                  / reference.norm())
                    result = dict(TBps=round(nbytes / seconds / 1e12, 3), relative_error=round(error, 5))
                except (triton.runtime.errors.OutOfResources, RuntimeError) as failure:
                    result = dict(error=str(failure)[:80])
                print(json.dumps(dict(shape=shape, rows=96, config=config, **result)), flush=True)
