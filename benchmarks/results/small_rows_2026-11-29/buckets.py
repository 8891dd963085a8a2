"""The shipped several-row int4 launch on Hopper (quantized_prompt_kernel.py's tiles, autotuned per weight shape and
bucket of rows) against the Triton tiles it replaced (the same tree with takes_prompt_kernel refused) and bf16
cuBLAS, at every bucket of rows: microseconds a launch over 6 weight copies replayed from a CUDA graph, the tile
autotune chose, and the relative error against dequantize-then-matmul in float64.
    python benchmarks/results/small_rows_2026-11-29/buckets.py > buckets_h200.jsonl
"""
import json
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
sys.path.insert(0, "benchmarks/results/small_rows_2026-11-29")
import quantized_decode_kernels as kernels  # noqa: E402
from profile_decode import rotated_quantized_weights  # noqa: E402
from rows import SHAPES, microseconds  # noqa: E402

ROWS = (2, 8, 16, 32, 48, 64, 96, 128, 200)


def main() -> None:
    routed = kernels.takes_prompt_kernel
    with torch.no_grad():
        for shape, parts in SHAPES.items():
            outputs, inputs = sum(n for n, _ in parts), parts[0][1]
            dense = [torch.randn(outputs, inputs, device="cuda", dtype=torch.bfloat16) for _ in range(6)]
            sets, nbytes = rotated_quantized_weights(4, parts)
            for rows in ROWS:
                x = torch.randn(rows, inputs, device="cuda", dtype=torch.bfloat16)
                reference = kernels.reference_product(x.double(), sets[0])
                record = dict(shape=shape, rows=rows, MB_a_launch=round(nbytes / 6 / 1e6, 1))
                for name, takes in (("gluon", routed), ("triton", lambda *args, **kwargs: False)):
                    kernels.takes_prompt_kernel = takes
                    out = kernels.launch_quantized_kernel(x, sets[0]).double()
                    record[f"{name}_us"] = microseconds([lambda w=w: kernels.launch_quantized_kernel(x, w)
                                                         for w in sets])
                    record[f"{name}_error"] = round(float((out - reference).norm() / reference.norm()), 5)
                    tuned = kernels._prompt_tiles_kernel if name == "gluon" else kernels._rows_kernel
                    record[f"{name}_tile"] = dict(tuned.best_config.kwargs)
                kernels.takes_prompt_kernel = routed
                record["bf16_cublas_us"] = microseconds([lambda w=w: F.linear(x, w) for w in dense])
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
