"""Batched decoding's products (8-32 rows) through the Gluon prompt kernels, weights dequantized into wgmma's
registers with the few rows on wgmma's N side (8, 16 or 32 wide), against the shipped launch (the Triton tiles,
autotuned over ROWS_TILES) and bf16 cuBLAS: microseconds a launch over 6 weight copies replayed from a CUDA graph,
and the relative error against dequantize-then-matmul in float64. int4: quantized_prompt_kernel.py with its tile
constants given; int8: the nineteenth session's prototype (`../quantized_decoding_2026-11-28f/next_gluon_int8.py`,
its row count and buffers set through its module constants).
    python benchmarks/results/small_rows_2026-11-29/rows.py > rows_h200.jsonl
"""
import json
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
sys.path.insert(0, "benchmarks/results/quantized_decoding_2026-11-28f")
import next_gluon_int8 as int8_prototype  # noqa: E402
import quantized_prompt_kernel as prompt  # noqa: E402
from profile_decode import replay_seconds, rotated_quantized_weights  # noqa: E402
from quantized_decode_kernels import FRAGMENT_PAIR_ASM, launch_quantized_kernel, reference_product  # noqa: E402

SHAPES = {"q|k|v": [(4096, 4096)] * 3, "o": [(4096, 4096)], "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
BUFFERS = [(4, 2), (6, 4), (8, 6)]  # (shared buffers, steps copied ahead); the prototype's ahead is buffers - 2


def gluon_product(x: torch.Tensor, weights: list, stacked: tuple, *, bits: int, rows: int, stages: int,
                  ahead: int) -> torch.Tensor:
    """int4: the stacked `weights` as the fast path passes them; int8: `stacked` (codes, scales) in one tensor each."""
    if bits == 4:
        return prompt.prompt_product(x, weights, FRAGMENT_PAIR_ASM[x.dtype],
                                     tiles=dict(rows=rows, stages=stages, ahead=ahead))
    int8_prototype.BLOCK_ROWS, int8_prototype.STAGES = rows, stages
    return int8_prototype.int8_product(x, *stacked)


def microseconds(launches) -> float:
    """A launch's median time over the weight copies, replayed from a CUDA graph."""
    return round(replay_seconds(lambda: [launch() for launch in launches]) / len(launches) * 1e6, 2)


def main() -> None:
    with torch.no_grad():
        for shape, parts in SHAPES.items():
            outputs, inputs = sum(n for n, _ in parts), parts[0][1]
            dense = [torch.randn(outputs, inputs, device="cuda", dtype=torch.bfloat16) for _ in range(6)]
            for bits in (4, 8):
                sets, nbytes = rotated_quantized_weights(bits, parts)
                stacked = [(torch.cat([w.qweight for w in weights]), torch.cat([w.scale.reshape(-1) for w in weights]))
                           for weights in sets]
                for rows in (8, 16, 32):
                    x = torch.randn(rows, inputs, device="cuda", dtype=torch.bfloat16)
                    reference = reference_product(x.double(), sets[0])
                    record = dict(shape=shape, bits=bits, rows=rows, MB_a_launch=round(nbytes / 6 / 1e6, 1),
                                  shipped_us=microseconds([lambda w=w: launch_quantized_kernel(x, w) for w in sets]),
                                  bf16_cublas_us=microseconds([lambda w=w: F.linear(x, w) for w in dense]))
                    for block_rows in [8, 16] if rows == 8 else [rows]:
                        for stages, ahead in BUFFERS:
                            options = dict(bits=bits, rows=block_rows, stages=stages, ahead=ahead)
                            name = f"gluon_{block_rows}x{stages}x{ahead}"
                            try:
                                out = gluon_product(x, sets[0], stacked[0], **options).double()
                                error = float((out - reference).norm() / reference.norm())
                                record[name] = [microseconds([lambda w=w, s=s: gluon_product(x, w, s, **options)
                                                              for w, s in zip(sets, stacked)]), round(error, 5)]
                            except Exception as failure:  # a tile the compiler refuses: recorded, the rest go on
                                record[name] = str(failure)[:200]
                    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
