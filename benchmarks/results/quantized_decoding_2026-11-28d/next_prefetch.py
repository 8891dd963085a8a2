"""Prototype (prepared in the sixteenth session for its int4 layout; run in the seventeenth on the new one,
words of 8 neighbouring inputs): the shipped one-row int4 loop (two words a 64-bit load, 16-bit pairs by inline PTX)
with the next step's words loaded before the current step's arithmetic (a loop-carried prefetch), so that each thread
keeps two steps' loads in flight. The pair
loop issues 4.0 instructions a weight and read 2.1-2.3 TB/s on an H200, about 44% of the issue rate: no longer bound
by issuing, so the loads in flight may be what bounds it now (the same idea gave +0-4% on the older float32 loop,
which was issue-bound). Timed as next_unrolled.py times (7B shapes, q|k|v and gate|up as one stacked weight of the
same bytes, 6 copies rotated, CUDA-graph replays, TB/s of codes, scales and offsets) against the shipped launch.
    python benchmarks/results/quantized_decoding_2026-11-28d/next_prefetch.py          # on a GPU
    TRITON_INTERPRET=1 python benchmarks/results/quantized_decoding_2026-11-28d/next_prefetch.py check
"""
import itertools
import json
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from quantized_decode_kernels import _group_scales, _int4_word_pair_dots, launch_quantized_kernel  # noqa: E402
from quantized_decode_kernels import PackedWeight, reference_product  # noqa: E402


@triton.jit
def _step_words(q_ptr, rows, k0, K: tl.constexpr, GROUP: tl.constexpr, BLOCK_K: tl.constexpr):
    """One step's word pairs (as the shipped _row_dots loads them), zero past the row's end."""
    HALF: tl.constexpr = GROUP // 16
    groups = k0 // GROUP + tl.arange(0, BLOCK_K // GROUP)
    pair = groups[None, :, None] * HALF + tl.arange(0, HALF)[None, None, :]
    return tl.load(q_ptr.to(tl.pointer_type(tl.int64)) + rows[:, None, None] * (K // 16) + pair,
                   mask=(groups < K // GROUP)[None, :, None], other=0, eviction_policy="evict_first")


@triton.jit
def int4_row_prefetch_kernel(x_ptr, out_ptr, q_ptr, s_ptr, f_ptr, N, K: tl.constexpr, GROUP: tl.constexpr,
                             BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PREFETCH: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    accumulator = tl.zeros((BLOCK_N, BLOCK_K // GROUP, GROUP // 16), dtype=tl.float32)
    packed = _step_words(q_ptr, rows, 0, K, GROUP, BLOCK_K)
    for k0 in range(0, K, BLOCK_K):
        if PREFETCH:
            following = _step_words(q_ptr, rows, k0 + BLOCK_K, K, GROUP, BLOCK_K)
        else:
            packed = _step_words(q_ptr, rows, k0, K, GROUP, BLOCK_K)
        groups = k0 // GROUP + tl.arange(0, BLOCK_K // GROUP)
        inside = groups < K // GROUP
        scale, offset = _group_scales(s_ptr, f_ptr, rows, N, groups, inside)
        pair = groups[None, :, None] * (GROUP // 16) + tl.arange(0, GROUP // 16)[None, None, :]
        accumulator += _int4_word_pair_dots(packed, x_ptr + 16 * pair, inside[None, :, None], scale[:, :, None],
                                            offset[:, :, None])
        if PREFETCH:
            packed = following
    tl.store(out_ptr + rows, tl.sum(tl.sum(accumulator, axis=2), axis=1).to(out_ptr.dtype.element_ty))


def prefetch_product(x: torch.Tensor, weight: PackedWeight, config: dict) -> torch.Tensor:
    """x (1, K) @ dequantized(one int4 weight).T."""
    rows, columns = weight.qweight.shape[0], x.shape[1]
    out = x.new_empty(1, rows)
    int4_row_prefetch_kernel[(rows // config["BLOCK_N"],)](
        x, out, weight.qweight, weight.scale, weight.offset, rows, K=columns, GROUP=columns // weight.scale.shape[0],
        BLOCK_N=config["BLOCK_N"], BLOCK_K=config["BLOCK_K"], PREFETCH=config["PREFETCH"],
        num_warps=config["num_warps"])
    return out


def stacked(weights: list[PackedWeight]) -> PackedWeight:
    return PackedWeight(torch.cat([w.qweight for w in weights]), torch.cat([w.scale for w in weights], 1).contiguous(),
                        torch.cat([w.offset for w in weights], 1).contiguous())


def check() -> None:
    from weight_quantization import quantize_int4
    torch.manual_seed(0)
    stored = quantize_int4((0.05 * torch.randn(64, 448)).bfloat16())
    weight = PackedWeight(stored["qweight"], stored["scale"], stored["offset"])
    x = torch.randn(1, 448).bfloat16()
    reference = reference_product(x.float(), [weight._replace(scale=weight.scale.float(),
                                                               offset=weight.offset.float())])
    for prefetch in (False, True):
        ours = prefetch_product(x, weight, {"BLOCK_N": 16, "BLOCK_K": 128, "PREFETCH": prefetch, "num_warps": 4})
        print("prefetch", prefetch, "max error", float((ours.float() - reference).abs().max()),
              "of", float(reference.abs().max()))


def main() -> None:
    from profile_decode import replay_seconds, rotated_quantized_weights
    shapes = {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
    configs = [{"BLOCK_N": n, "BLOCK_K": k, "num_warps": w, "PREFETCH": prefetch}
               for (n, k, w), prefetch in itertools.product(((16, 512, 4), (8, 1024, 8), (8, 512, 4), (4, 1024, 4)),
                                                            (False, True))]
    with torch.no_grad():
        for shape, parts in shapes.items():
            sets, nbytes = rotated_quantized_weights(4, parts)
            whole = [stacked(weights) for weights in sets]
            x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
            reference = reference_product(x, sets[0]).float()
            seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w) for w in sets])
            print(json.dumps(dict(shape=shape, config="shipped", TBps=round(nbytes / seconds / 1e12, 3))), flush=True)
            for config in configs:
                error = float((prefetch_product(x, whole[0], config).float() - reference).norm() / reference.norm())
                seconds = replay_seconds(lambda: [prefetch_product(x, w, config) for w in whole])
                print(json.dumps(dict(shape=shape, config=config, TBps=round(nbytes / seconds / 1e12, 3),
                                      relative_error=round(error, 5))), flush=True)


if __name__ == "__main__":
    check() if sys.argv[1:] == ["check"] else main()
