"""Prepared (2026-11-29, twenty-fourth session), not yet run: int8 prompts on the int8 tensor cores, exactly.

int8's first token is 8-19% above bf16's because its several-row products take 1.4x cuBLAS's time at half the bytes
(q|k|v at 96 rows 42.6 us against 29.3; benchmarks/RESULTS.md, "What holds a one-row launch"): the Triton tile
converts codes and feeds bf16 tensor cores, and no tile or Gluon kernel tried reached cuBLAS. Here the weights stay
int8 and the input is cut into int8 limbs instead: each row x (bf16) is scaled by a power of two 2^s (s from its
largest magnitude) and rounded to an integer a of at most 22 bits, exact for every element within 2^-14 of the row's
largest (bf16 holds 8 significant bits) and within 2^-23 of the largest for the rest; a = l2 * 2^16 + l1 * 2^8 + l0
with each limb in [-128, 127]. One cuBLASLt int8 matmul (`torch._int_mm`) of the three limbs stacked as rows against
the codes gives three exact int32 sums a row, P_i = sum_k l_i[k] * code[k] (|P| < 2^31 for up to 131k inputs), and
x @ w.T = scale * 2^-s * (P2 * 2^16 + P1 * 2^8 + P0), added in float32. The weights are read once, as int8; the matmul
has three times the rows, which at prompt lengths costs little on tensor cores that run int8 at twice bf16's rate.
Two limbs (16 bits, exact within 2^-7 of the row's largest) are timed too, with their error.

Timed, microseconds a product at 8-256 rows, the 7B shapes' weights in copies (>= 200 MB) replayed from a CUDA graph:
the shipped autotuned int8 launch, bf16 cuBLAS, the limbs in eager ops and compiled (torch.compile fusing the split
into one kernel and the sum into another); the relative error against dequantize-then-matmul in float64 beside each.

    python benchmarks/results/int8_limbs_2026-11-29/limbs.py check     # CPU: the limbs' arithmetic
    python benchmarks/results/int8_limbs_2026-11-29/limbs.py --output limbs.jsonl     # one GPU
"""
import argparse
import math
import os
import sys

import torch

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(BENCHMARKS))
sys.path.insert(0, BENCHMARKS)

from quantized_decode_kernels import PackedWeight, launch_quantized_kernel, packed_weight  # noqa: E402
from quantized_decode_kernels import reference_product  # noqa: E402

SHAPES = {"q|k|v": (12288, 4096), "o": (4096, 4096), "gate|up": (22016, 4096), "down": (4096, 11008)}


def split_limbs(x: torch.Tensor, limbs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x (M, K) as `limbs` int8 limbs stacked as rows (limbs * M, K), the lowest first, and each row's power of two
    (M, 1) float32: x ~ 2^-s * sum_i limb_i * 2^(8 i)."""
    as_float = x.float()
    largest = as_float.abs().amax(-1, keepdim=True)
    exponent = torch.frexp(largest).exponent  # largest < 2^exponent
    shift = torch.where(largest > 0, 8 * limbs - 2 - exponent, torch.zeros_like(exponent))
    rest = torch.round(torch.ldexp(as_float, shift)).to(torch.int32)  # |rest| < 2^(8 limbs - 2): exact in float32
    pieces = []
    for _ in range(limbs - 1):
        low = ((rest + 128) & 255) - 128
        pieces.append(low.to(torch.int8))
        rest = (rest - low) >> 8
    pieces.append(rest.to(torch.int8))  # |top| <= 2^6 + 1
    return torch.cat(pieces), torch.ldexp(torch.ones_like(largest), -shift)


def limb_sums(x: torch.Tensor, weight: PackedWeight, limbs: int = 3) -> torch.Tensor:
    """x @ dequantized(w).T for int8 `weight` (codes (N, K), a scale per output), float32."""
    rows = x.shape[0]
    stacked, power = split_limbs(x, limbs)
    sums = torch._int_mm(stacked, weight.qweight.t()).view(limbs, rows, -1).float()
    total = sums[limbs - 1]
    for index in range(limbs - 2, -1, -1):
        total = total * 256 + sums[index]
    return total * power * weight.scale.float()


def limb_product(x: torch.Tensor, weight: PackedWeight, limbs: int = 3) -> torch.Tensor:
    """`limb_sums` in x's dtype."""
    return limb_sums(x, weight, limbs).to(x.dtype)


def check() -> None:
    """The limbs against dequantize-then-matmul in float64 on the CPU, with outliers in the rows (Llama's
    activations have a few features far above the rest) and a row of zeros."""
    torch.manual_seed(0)
    for rows, (n, k) in ((24, (256, 512)), (40, (128, 1024))):
        weight = packed_weight(torch.randn(n, k, dtype=torch.bfloat16) / k**0.5, 8)
        x = torch.randn(rows, k)
        x[:, :4] *= 100  # outliers
        x[-1] = 0
        x = x.bfloat16()
        reference = reference_product(x.double(), [weight._replace(scale=weight.scale.double())])
        for limbs in (2, 3):
            stacked, power = split_limbs(x, limbs)
            rebuilt = sum(stacked.view(limbs, rows, k)[i].double() * 256.0 ** i for i in range(limbs)) * power.double()
            sums, ours = limb_sums(x, weight, limbs).double(), limb_product(x, weight, limbs).double()
            rounded = reference.to(x.dtype).double()  # the reference's own rounding to bf16, for scale
            print(f"{rows} x {k} -> {n}, {limbs} limbs: input rebuilt exactly "
                  f"{bool(torch.equal(rebuilt, x.double()))} (largest error "
                  f"{float((rebuilt - x.double()).abs().max()):.3g} of {float(x.double().abs().max()):.3g}), "
                  f"float32 sums' relative error {float((sums - reference).norm() / reference.norm()):.2e}, "
                  f"in bf16 {float((ours - reference).norm() / reference.norm()):.2e} (the reference rounded to "
                  f"bf16: {float((rounded - reference).norm() / reference.norm()):.2e}), zero row zero "
                  f"{bool((ours[-1] == 0).all())}")


def main() -> None:
    from bench_records import append_record
    from profile_decode import replay_seconds
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="limbs.jsonl")
    parser.add_argument("--rows", default="8,32,96,128,256")
    args = parser.parse_args()
    compiled = {limbs: torch.compile(lambda x, weight, limbs=limbs: limb_product(x, weight, limbs)) for limbs in (2, 3)}
    for shape, (n, k) in SHAPES.items():
        copies = max(4, math.ceil(200e6 / (n * k)))
        bf16 = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5 for _ in range(copies)]
        packed = [packed_weight(w, 8) for w in bf16]
        for rows in map(int, args.rows.split(",")):
            x = torch.randn(rows, k, device="cuda")
            x[:, :4] *= 100
            x = x.bfloat16()
            reference = reference_product(x.double(), [packed[0]._replace(scale=packed[0].scale.double())])
            ways = {"shipped": lambda w: launch_quantized_kernel(x, [w]), "bf16 cuBLAS": None}
            for limbs in (2, 3):
                ways[f"{limbs} limbs, eager"] = lambda w, limbs=limbs: limb_product(x, w, limbs)
                ways[f"{limbs} limbs, compiled"] = lambda w, limbs=limbs: compiled[limbs](x, w)
            for way, product in ways.items():
                try:
                    if product is None:
                        calls, error = (lambda: [x @ w.t() for w in bf16]), None
                    else:
                        calls = lambda product=product: [product(w) for w in packed]  # noqa: E731
                        error = float((product(packed[0]).double() - reference).norm() / reference.norm())
                    microseconds = replay_seconds(calls) / copies * 1e6
                except Exception as exception:  # noqa: BLE001 - recorded, the next way still runs
                    append_record(args.output, dict(shape=shape, rows=rows, way=way, error=str(exception)[:200]))
                    continue
                append_record(args.output, dict(shape=shape, rows=rows, way=way, us=microseconds,
                                                relative_error=error))


if __name__ == "__main__":
    with torch.no_grad():
        check() if sys.argv[1:] == ["check"] else main()
