"""Prototype (2026-11-28, fifteenth session): the shipped one-row int4 kernel's loop (row-major words, one warp's lanes
along a row's inputs) with UNROLL steps' weights, scales and offsets requested before any of their arithmetic, so that
each thread has UNROLL 16-byte loads in flight instead of one, in the layout of one step (a wider BLOCK_K makes Triton
lay rows across registers instead, RESULTS.md "One-row kernels with wide steps"). Tests whether the one-row int4
kernels are bound by the loads each thread keeps in flight. Timed as next_word_major.py times (7B shapes, 6 copies
rotated, CUDA-graph replays, TB/s of codes, scales and offsets), against the shipped autotuned launch.
    python benchmarks/results/quantized_decoding_2026-11-28b/next_unrolled.py
"""
import itertools
import json
import os
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from quantized_decode_kernels import _group_scales, _int4_codes, launch_quantized_kernel  # noqa: E402
from quantized_decode_kernels import reference_product  # noqa: E402


@triton.jit
def _step_loads(q_ptr, s_ptr, f_ptr, rows, rows_in_weight, k0, K: tl.constexpr, GROUP: tl.constexpr,
                BLOCK_K: tl.constexpr, BIT_CAST: tl.constexpr):
    GROUPS: tl.constexpr = K // GROUP
    WORDS: tl.constexpr = GROUP // 8
    groups = k0 // GROUP + tl.arange(0, BLOCK_K // GROUP)
    inside = groups < GROUPS
    words = tl.arange(0, WORDS)
    word = groups[None, :, None] * WORDS + words[None, None, :]
    packed = tl.load(q_ptr + rows[:, None, None] * (K // 8) + word, mask=inside[None, :, None], other=0,
                     eviction_policy="evict_first")
    scale, offset = _group_scales(s_ptr, f_ptr, rows, rows_in_weight, groups, inside, BIT_CAST)
    return packed, scale, offset, groups, inside


@triton.jit
def _step_sum(accumulator, packed, scale, offset, groups, inside, x_ptr, GROUP: tl.constexpr,
              BIT_CAST: tl.constexpr):
    WORDS: tl.constexpr = GROUP // 8
    words = tl.arange(0, WORDS)
    first_input = groups[None, :, None] * GROUP + words[None, None, :]
    products = tl.zeros(accumulator.shape, dtype=tl.float32)
    inputs = tl.zeros((1, accumulator.shape[1], WORDS), dtype=tl.float32)
    for plane in tl.static_range(8):
        x = tl.load(x_ptr + first_input + plane * WORDS, mask=inside[None, :, None], other=0).to(tl.float32)
        products += _int4_codes(packed, plane, BIT_CAST) * x
        inputs += x
    return accumulator + products * scale[:, :, None] + inputs * offset[:, :, None]


@triton.jit
def int4_rows_unrolled_kernel(x_ptr, out_ptr, q_ptr, s_ptr, f_ptr, N, K: tl.constexpr, GROUP: tl.constexpr,
                              BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, UNROLL: tl.constexpr,
                              BIT_CAST: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    accumulator = tl.zeros((BLOCK_N, BLOCK_K // GROUP, GROUP // 8), dtype=tl.float32)
    for k0 in range(0, K, UNROLL * BLOCK_K):
        a = _step_loads(q_ptr, s_ptr, f_ptr, rows, N, k0, K, GROUP, BLOCK_K, BIT_CAST)
        if UNROLL >= 2:
            b = _step_loads(q_ptr, s_ptr, f_ptr, rows, N, k0 + BLOCK_K, K, GROUP, BLOCK_K, BIT_CAST)
        if UNROLL >= 4:
            c = _step_loads(q_ptr, s_ptr, f_ptr, rows, N, k0 + 2 * BLOCK_K, K, GROUP, BLOCK_K, BIT_CAST)
            d = _step_loads(q_ptr, s_ptr, f_ptr, rows, N, k0 + 3 * BLOCK_K, K, GROUP, BLOCK_K, BIT_CAST)
        accumulator = _step_sum(accumulator, a[0], a[1], a[2], a[3], a[4], x_ptr, GROUP, BIT_CAST)
        if UNROLL >= 2:
            accumulator = _step_sum(accumulator, b[0], b[1], b[2], b[3], b[4], x_ptr, GROUP, BIT_CAST)
        if UNROLL >= 4:
            accumulator = _step_sum(accumulator, c[0], c[1], c[2], c[3], c[4], x_ptr, GROUP, BIT_CAST)
            accumulator = _step_sum(accumulator, d[0], d[1], d[2], d[3], d[4], x_ptr, GROUP, BIT_CAST)
    tl.store(out_ptr + rows, tl.sum(tl.sum(accumulator, axis=2), axis=1).to(out_ptr.dtype.element_ty))


def unrolled_product(x: torch.Tensor, qweight: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor,
                     config: dict) -> torch.Tensor:
    """x (1, K) @ dequantized(one stacked int4 weight).T."""
    N, K = qweight.shape[0], x.shape[1]
    out = x.new_empty(1, N)
    int4_rows_unrolled_kernel[(N // config["BLOCK_N"],)](
        x, out, qweight, scale, offset, N, K=K, GROUP=K // scale.shape[0], BLOCK_N=config["BLOCK_N"],
        BLOCK_K=config["BLOCK_K"], UNROLL=config["UNROLL"], BIT_CAST=config["BIT_CAST"],
        num_warps=config["num_warps"])
    return out


def main() -> None:
    from profile_decode import replay_seconds, rotated_quantized_weights
    output = os.path.join(os.environ.get("OUT", "/tmp"), "kernels_unrolled.jsonl")
    # q|k|v stacked as one weight (rows concatenated): the same bytes as the shipped launch's three
    shapes = {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
    configs = [{"BLOCK_N": n, "BLOCK_K": k, "num_warps": w, "UNROLL": u, "BIT_CAST": cast}
               for (n, k, w), u, cast in itertools.product(((8, 1024, 8), (8, 512, 4), (4, 1024, 4), (4, 512, 2)),
                                                           (1, 2, 4), (False, True))]
    with open(output, "w") as out, torch.no_grad():
        for shape, parts in shapes.items():
            sets, nbytes = rotated_quantized_weights(4, parts)
            stacked = [(torch.cat([w.qweight for w in s]), torch.cat([w.scale for w in s], 1).contiguous(),
                        torch.cat([w.offset for w in s], 1).contiguous()) for s in sets]
            x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
            reference = reference_product(x, sets[0]).float()
            seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w) for w in sets])
            results = [dict(bits=4, shape=shape, config="shipped (autotuned)", TBps=nbytes / seconds / 1e12)]
            for config in configs:
                if parts[0][1] % (config["BLOCK_K"] * config["UNROLL"]):
                    continue  # the unrolled steps must tile the row
                try:
                    error = (unrolled_product(x, *stacked[0], config).float() - reference).abs().max()
                    seconds = replay_seconds(lambda: [unrolled_product(x, *w, config) for w in stacked])
                except Exception as failure:
                    print(shape, config, "error", str(failure)[:160], flush=True)
                    continue
                assert error <= 0.02 * reference.abs().max(), (shape, config, float(error))
                results.append(dict(bits=4, shape=shape, config=config, TBps=nbytes / seconds / 1e12))
            for record in results:
                print(json.dumps(record), file=out, flush=True)
            ranked = sorted(results, key=lambda r: -r["TBps"])
            print(shape, "shipped", round(results[0]["TBps"], 3), "best",
                  [(r["config"] if isinstance(r["config"], str) else tuple(r["config"].values()), round(r["TBps"], 3))
                   for r in ranked[:5]], flush=True)


if __name__ == "__main__":
    main()
