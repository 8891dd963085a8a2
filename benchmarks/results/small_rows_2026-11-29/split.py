"""rows.py's Gluon kernels with each tile's inputs split among programs (the launch's partial sums added by
quantized_decode_kernels' `_split_sum_kernel`, as the Triton split tiles do): batched decoding's products of 8-32 rows,
one row, and prompts' 96, against the shipped launch and bf16 cuBLAS. int4: quantized_prompt_kernel.py (its SPLIT);
int8: `int8_split.py`. Microseconds a launch over 6 weight copies replayed from a CUDA graph, and the relative error
against dequantize-then-matmul in float64.
    python benchmarks/results/small_rows_2026-11-29/split.py > split_h200.jsonl
"""
import json
import sys

import torch
import torch.nn.functional as F
import triton

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
sys.path.insert(0, "benchmarks/results/small_rows_2026-11-29")
import int8_split  # noqa: E402
from rows import SHAPES, microseconds  # noqa: E402
import quantized_prompt_kernel as prompt  # noqa: E402
from profile_decode import rotated_quantized_weights  # noqa: E402
from quantized_decode_kernels import (  # noqa: E402
    FRAGMENT_PAIR_ASM, SUM_BLOCK, _split_sum_kernel, launch_quantized_kernel, reference_product,
)

# rows: (rows a program, [(shared buffers, steps copied ahead)], splits)
TILES = {1: (8, [(8, 6)], (1, 2, 4, 8)), 8: (8, [(8, 6), (12, 10)], (1, 2, 4, 8)), 16: (16, [(8, 6)], (1, 2, 4, 8)),
         32: (32, [(8, 6)], (1, 2, 4)), 96: (128, [(4, 2)], (1, 2, 4))}


def summed(partials: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if partials.dim() == 2:
        return partials
    out = partials.new_empty(partials.shape[1:], dtype=dtype)
    _split_sum_kernel[(triton.cdiv(out.numel(), SUM_BLOCK),)](partials, out, out.numel(), partials.shape[0], SUM_BLOCK)
    return out


def gluon_product(x: torch.Tensor, weights: list, stacked: tuple, *, bits: int, rows: int, stages: int, ahead: int,
                  split: int) -> torch.Tensor:
    """int4: the stacked `weights` as the fast path passes them; int8: `stacked` (codes, scales) in one tensor each."""
    if bits == 4:
        partials = prompt.prompt_product(x, weights, FRAGMENT_PAIR_ASM[x.dtype],
                                         tiles=dict(rows=rows, stages=stages, ahead=ahead, split=split))
    else:
        partials = int8_split.int8_product(x, *stacked, rows_a_program=rows, stages=stages, split=split)
    return summed(partials, x.dtype)


def main() -> None:
    with torch.no_grad():
        for shape, parts in SHAPES.items():
            outputs, inputs = sum(n for n, _ in parts), parts[0][1]
            dense = [torch.randn(outputs, inputs, device="cuda", dtype=torch.bfloat16) for _ in range(6)]
            for bits in (4, 8):
                sets, nbytes = rotated_quantized_weights(bits, parts)
                stacked = [(torch.cat([w.qweight for w in weights]), torch.cat([w.scale.reshape(-1) for w in weights]))
                           for weights in sets]
                for rows, (block_rows, buffers, splits) in TILES.items():
                    x = torch.randn(rows, inputs, device="cuda", dtype=torch.bfloat16)
                    reference = reference_product(x.double(), sets[0])
                    record = dict(shape=shape, bits=bits, rows=rows, MB_a_launch=round(nbytes / 6 / 1e6, 1),
                                  shipped_us=microseconds([lambda w=w: launch_quantized_kernel(x, w) for w in sets]),
                                  bf16_cublas_us=microseconds([lambda w=w: F.linear(x, w) for w in dense]))
                    for stages, ahead in buffers:
                        for split in splits:
                            if (inputs // 64) % split:
                                continue
                            options = dict(bits=bits, rows=block_rows, stages=stages, ahead=ahead, split=split)
                            name = f"gluon_{block_rows}x{stages}x{ahead}_split{split}"
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
