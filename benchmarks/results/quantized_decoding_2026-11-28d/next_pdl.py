"""Prototype for the next session (2026-11-28, seventeenth session; not run: the device time was spent): programmatic
dependent launch (PDL, sm_90+) between the one-row int4 products of a decode step. A batch-1 int4 step on an H200
replays in 2.37 ms of which the products take 1.76 ms in 128 launches (four a layer), each ramping up and draining
on its own. With PDL a launch's programs may start while the previous launch finishes: they read their first step's
weights, scales and offsets (which no earlier kernel writes), then wait (`gdc_wait`) for the previous kernel's output
before reading their input; each program lets the next launch start as soon as it begins (`gdc_launch_dependents`).

The chain imitates a step's products, each reading the previous one's output: q|k|v (4096 -> 12288), o (its first
4096 -> 4096), gate|up (-> 22016, not gated here), down (its first 11008 -> 4096), for 32 layers of distinct weights,
captured in one CUDA graph. Timed: the shipped autotuned launches, this kernel without PDL, and with PDL (whether
stream capture keeps the launches' PDL attribute is part of the question: an error is printed, not raised); the
chain's last output with PDL must equal the one without.
    python benchmarks/results/quantized_decoding_2026-11-28d/next_pdl.py          # on an sm_90 GPU
    TRITON_INTERPRET=1 python benchmarks/results/quantized_decoding_2026-11-28d/next_pdl.py check
"""
import json
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from quantized_decode_kernels import INTERPRETED, PackedWeight, _int4_word_pair_dots, _step_word_pairs  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel, reference_product  # noqa: E402
from weight_quantization import quantize_int4  # noqa: E402


@triton.jit
def int4_row_pdl_kernel(x_ptr, out_ptr, q_ptr, s_ptr, f_ptr, N, K: tl.constexpr, GROUP: tl.constexpr,
                        BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, USE_GDC: tl.constexpr):
    if USE_GDC and not INTERPRETED:
        tl.extra.cuda.gdc_launch_dependents()
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    accumulator = tl.zeros((BLOCK_N, BLOCK_K // GROUP, GROUP // 16), dtype=tl.float32)
    # the first step's weights, scales and offsets: no earlier kernel writes them
    packed, pair, inside, scale, offset = _step_word_pairs(q_ptr, s_ptr, f_ptr, rows, N, 0, K, GROUP, BLOCK_K,
                                                           "evict_first")
    if USE_GDC and not INTERPRETED:
        tl.extra.cuda.gdc_wait()  # the input: the previous kernel's output, complete and visible from here
    for k0 in range(0, K, BLOCK_K):
        if k0 > 0:
            packed, pair, inside, scale, offset = _step_word_pairs(q_ptr, s_ptr, f_ptr, rows, N, k0, K, GROUP,
                                                                   BLOCK_K, "evict_first")
        accumulator += _int4_word_pair_dots(packed, x_ptr + 16 * pair, inside[None, :, None], scale, offset)
    tl.store(out_ptr + rows, tl.sum(tl.sum(accumulator, axis=2), axis=1).to(out_ptr.dtype.element_ty))


def pdl_product(x: torch.Tensor, weight: PackedWeight, out: torch.Tensor, *, use_gdc: bool,
                config: dict) -> torch.Tensor:
    """out (1, N) = x (1, K) @ dequantized(one int4 weight).T, launched with PDL when `use_gdc`."""
    rows, columns = weight.qweight.shape[0], x.shape[1]
    int4_row_pdl_kernel[(rows // config["BLOCK_N"],)](
        x, out, weight.qweight, weight.scale, weight.offset, rows, K=columns, GROUP=columns // weight.scale.shape[0],
        BLOCK_N=config["BLOCK_N"], BLOCK_K=config["BLOCK_K"], USE_GDC=use_gdc, num_warps=config["num_warps"],
        **({"launch_pdl": True} if use_gdc else {}))
    return out


def packed(rows: int, columns: int, device: str) -> PackedWeight:
    stored = quantize_int4(torch.randn(rows, columns, device=device, dtype=torch.bfloat16) / columns**0.5)
    return PackedWeight(stored["qweight"], stored["scale"], stored["offset"])


def check() -> None:
    torch.manual_seed(0)
    weight = packed(64, 448, "cpu")
    x = torch.randn(1, 448).bfloat16()
    reference = reference_product(x.float(), [weight._replace(scale=weight.scale.float(),
                                                               offset=weight.offset.float())])
    ours = pdl_product(x, weight, x.new_empty(1, 64), use_gdc=True,
                       config={"BLOCK_N": 16, "BLOCK_K": 128, "num_warps": 4})
    print("max error", float((ours.float() - reference).abs().max()), "of", float(reference.abs().max()))


LAYER = ((12288, 4096), (4096, 4096), (22016, 4096), (4096, 11008))  # q|k|v, o, gate|up, down as (outputs, inputs)
CONFIG = {"BLOCK_N": 8, "BLOCK_K": 1024, "num_warps": 8}


def main() -> None:
    from profile_decode import replay_seconds
    layers = [[packed(rows, columns, "cuda") for rows, columns in LAYER] for _ in range(32)]
    nbytes = sum(t.numel() * t.element_size() for layer in layers for weight in layer for t in weight)
    x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
    outputs = [x.new_empty(1, rows) for rows, _ in LAYER]

    def chain(step):  # step(input, weight, out) for every product of every layer; returns the last output
        current = x
        for layer in layers:
            for index, weight in enumerate(layer):
                current = step(current[:, :weight.qweight.shape[1] * 8], weight, outputs[index])
        return current

    variants = {
        "shipped": lambda a, w, out: launch_quantized_kernel(a.contiguous(), [w]),
        "prototype": lambda a, w, out: pdl_product(a.contiguous(), w, out, use_gdc=False, config=CONFIG),
        "prototype + PDL": lambda a, w, out: pdl_product(a.contiguous(), w, out, use_gdc=True, config=CONFIG),
    }
    with torch.no_grad():
        plain = chain(variants["prototype"]).clone()
        for name, step in variants.items():
            try:
                seconds = replay_seconds(lambda: chain(step))
                last = chain(step).float()
                print(json.dumps(dict(variant=name, step_ms=round(seconds * 1e3, 4),
                                      TBps=round(nbytes / seconds / 1e12, 3),
                                      max_difference_from_prototype=float((last - plain.float()).abs().max()))),
                      flush=True)
            except Exception as error:  # noqa: BLE001 - the question is whether it runs at all
                print(json.dumps(dict(variant=name, error=f"{type(error).__name__}: {str(error)[:300]}")), flush=True)


if __name__ == "__main__":
    check() if sys.argv[1:] == ["check"] else main()
