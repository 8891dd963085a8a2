"""bench_generate.py with one row's autotune timing its candidates one way or another (`row_tuning.py`):
`autotune` leaves quantized_decode_kernels._row_kernel as it is; `clean` times each candidate replayed from a CUDA
graph after reading 256 MB (L2 left holding clean lines). The remaining arguments are bench_generate.py's.

    TRITON_CACHE_DIR=$(mktemp -d) python tuned_generate.py clean --modes embedding --methods fast --quantize int4
"""

import os
import runpy
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [HERE, os.path.dirname(BENCHMARKS), BENCHMARKS]

import quantized_decode_kernels  # noqa: E402
from row_tuning import FLUSH_BYTES, clean_flush_ms  # noqa: E402

if __name__ == "__main__":
    timing = sys.argv.pop(1)
    if timing == "clean":
        flush = torch.ones(FLUSH_BYTES // 4, dtype=torch.float32, device="cuda")
        tuner = quantized_decode_kernels._row_kernel
        quantized_decode_kernels._row_kernel = quantized_decode_kernels._autotuned(
            quantized_decode_kernels.ROW_CONFIGS, key=tuner.keys,
            prune_configs_by={"early_config_prune": tuner.early_config_prune},
            do_bench=lambda call, quantiles: clean_flush_ms(call, flush, quantiles))
    else:
        assert timing == "autotune", timing
    sys.argv[0] = os.path.join(BENCHMARKS, "bench_generate.py")
    runpy.run_path(sys.argv[0], run_name="__main__")
