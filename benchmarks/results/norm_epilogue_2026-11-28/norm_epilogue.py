"""Prepared (2026-11-28, twenty-third session), run 2026-11-29: the residual add and RMSNorm after a one-row product
done by the product launch's last program, in place of their own kernel (now shipped: quantized_decode_kernels.
_residual_norm_kernel).

A batch-1 step runs, per layer, two compiled add + RMSNorm kernels (2.3 us each, 0.145 ms a step; benchmarks/
RESULTS.md, "Where a batch-1 step goes now") after the o and down products. Here the product's programs count
themselves in (decode_kernels.last_to_arrive, as decode_attention.py combines its slices) and the last one reads the
product's whole output past L1, adds the residual, and writes the sum and its RMSNorm, rounding as
fast_decoder.rms_norm does. Timed over 32 layers' weights of one shape in turn (CUDA-graph replays, microseconds a
layer), three ways:
- `shipped`: the autotuned launch, then the compiled add + RMSNorm;
- `product`: this file's kernel without the epilogue, then the same compiled add + RMSNorm (its tiling alone);
- `epilogue`: this file's kernel with the epilogue.
The saving is `product` - `epilogue`; the hidden and normed outputs are checked against the compiled ones.

    python benchmarks/results/norm_epilogue_2026-11-28/norm_epilogue.py --output norm_epilogue.jsonl   # on a GPU
    TRITON_INTERPRET=1 python benchmarks/results/norm_epilogue_2026-11-28/norm_epilogue.py check
"""
import argparse
import os
import sys

import torch
import triton
import triton.language as tl

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(BENCHMARKS))
sys.path.insert(0, BENCHMARKS)

from decode_kernels import last_to_arrive  # noqa: E402
from fast_decoder import rms_norm  # noqa: E402
from quantized_decode_kernels import _row_dots, launch_quantized_kernel, packed_weight  # noqa: E402

EPS = 1e-5


@triton.jit
def product_norm_kernel(x_ptr, out_ptr, q_ptr, s_ptr, f_ptr, residual_ptr, norm_ptr, hidden_ptr, normed_ptr,
                        arrivals_ptr, eps, N: tl.constexpr, K: tl.constexpr, GROUP: tl.constexpr,
                        INT4: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, EPILOGUE: tl.constexpr):
    """out = x @ dequantized(w).T for this program's BLOCK_N rows; with EPILOGUE the last program to finish writes
    hidden = residual + out and normed = RMSNorm(hidden) * norm (N values each), as fast_decoder.rms_norm rounds."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    dots = _row_dots(q_ptr, s_ptr, f_ptr, x_ptr, rows, N, K, GROUP, INT4, BLOCK_N, BLOCK_K, False)
    tl.store(out_ptr + rows, dots.to(out_ptr.dtype.element_ty))
    if EPILOGUE:
        if last_to_arrive(arrivals_ptr, 0, N // BLOCK_N):
            columns = tl.arange(0, N)
            out = tl.load(out_ptr + columns, cache_modifier=".cg").to(tl.float32)
            hidden = (tl.load(residual_ptr + columns).to(tl.float32) + out).to(hidden_ptr.dtype.element_ty)
            tl.store(hidden_ptr + columns, hidden)
            as_float = hidden.to(tl.float32)
            normalised = as_float * tl.rsqrt(tl.sum(as_float * as_float, axis=0) / N + eps)
            scaled = tl.load(norm_ptr + columns).to(tl.float32) * normalised.to(hidden.dtype).to(tl.float32)
            tl.store(normed_ptr + columns, scaled.to(normed_ptr.dtype.element_ty))


def add_norm(residual: torch.Tensor, out: torch.Tensor, norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    hidden = residual + out
    return hidden, rms_norm(hidden, norm, EPS)


def product_norm(x: torch.Tensor, weight, residual: torch.Tensor, norm: torch.Tensor, *, config: dict,
                 arrivals: torch.Tensor, epilogue: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(out, hidden, normed); hidden and normed are left empty without the epilogue."""
    n, k = weight.qweight.shape[0], x.shape[-1]
    int4 = weight.offset is not None
    out, hidden, normed = (x.new_empty(1, n) for _ in range(3))
    product_norm_kernel[(n // config["BLOCK_N"],)](
        x, out, weight.qweight, weight.scale, weight.offset if int4 else weight.scale, residual, norm, hidden, normed,
        arrivals, EPS, N=n, K=k, GROUP=k // weight.scale.shape[0] if int4 else k, INT4=int4,
        BLOCK_N=config["BLOCK_N"], BLOCK_K=config["BLOCK_K"], EPILOGUE=epilogue, num_warps=config["num_warps"])
    return out, hidden, normed


def check() -> None:
    """The epilogue against add_norm, small shapes (Triton's interpreter or a GPU)."""
    device = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
    torch.manual_seed(0)
    arrivals = torch.zeros(1, dtype=torch.int32, device=device)
    for bits in (4, 8):
        weight = packed_weight(torch.randn(256, 512, device=device, dtype=torch.bfloat16) / 16, bits)
        x, residual = (torch.randn(1, n, device=device, dtype=torch.bfloat16) for n in (512, 256))
        norm = 1 + 0.1 * torch.randn(256, device=device, dtype=torch.bfloat16)
        out, hidden, normed = product_norm(x, weight, residual, norm, config={"BLOCK_N": 8, "BLOCK_K": 128,
                                                                             "num_warps": 4},
                                           arrivals=arrivals, epilogue=True)
        expected_hidden, expected_normed = add_norm(residual, out, norm)
        # Triton's interpreter rounds to bfloat16 towards zero (a GPU to nearest): there hidden differs by an ulp
        print(f"int{bits}: hidden equal {torch.equal(hidden, expected_hidden)} (max difference "
              f"{float((hidden.float() - expected_hidden.float()).abs().max()):.3g}), normed max difference "
              f"{float((normed.float() - expected_normed.float()).abs().max()):.3g} of "
              f"{float(expected_normed.float().abs().max()):.3g}, counter back at {int(arrivals[0])}")


def main() -> None:
    from bench_records import append_record
    from profile_decode import replay_seconds
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="norm_epilogue.jsonl")
    parser.add_argument("--layers", type=int, default=32)
    args = parser.parse_args()
    compiled_add_norm = torch.compile(add_norm)
    arrivals = torch.zeros(1, dtype=torch.int32, device="cuda")
    configs = [{"BLOCK_N": 8, "BLOCK_K": 512, "num_warps": 4}, {"BLOCK_N": 8, "BLOCK_K": 1024, "num_warps": 8},
               {"BLOCK_N": 4, "BLOCK_K": 1024, "num_warps": 4}]
    for bits in (4, 8):
        for shape, (n, k) in {"o": (4096, 4096), "down": (4096, 11008)}.items():
            weights = [packed_weight(torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5, bits)
                       for _ in range(args.layers)]
            x = torch.randn(1, k, device="cuda", dtype=torch.bfloat16)
            residual = torch.randn(1, n, device="cuda", dtype=torch.bfloat16)
            norm = 1 + 0.1 * torch.randn(n, device="cuda", dtype=torch.bfloat16)

            def shipped():
                return [compiled_add_norm(residual, launch_quantized_kernel(x, [w]), norm) for w in weights]
            append_record(args.output, dict(bits=bits, shape=shape, way="shipped",
                                            us=replay_seconds(shipped) / args.layers * 1e6))
            for config in configs:
                def product(config=config):
                    return [compiled_add_norm(residual, product_norm(x, w, residual, norm, config=config,
                                                                     arrivals=arrivals, epilogue=False)[0], norm)
                            for w in weights]

                def epilogue(config=config):
                    return [product_norm(x, w, residual, norm, config=config, arrivals=arrivals, epilogue=True)
                            for w in weights]
                out, hidden, normed = epilogue()[0]
                expected_hidden, expected_normed = add_norm(residual, out, norm)
                times = {way: replay_seconds(call) / args.layers * 1e6
                         for way, call in (("product", product), ("epilogue", epilogue))}
                append_record(args.output, dict(
                    bits=bits, shape=shape, config=config, **{f"{way} us": us for way, us in times.items()},
                    saved_us=times["product"] - times["epilogue"], hidden_equal=torch.equal(hidden, expected_hidden),
                    normed_max_difference=float((normed.float() - expected_normed.float()).abs().max())))


if __name__ == "__main__":
    with torch.no_grad():
        check() if sys.argv[1:] == ["check"] else main()
