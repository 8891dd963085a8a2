# 2026-11-28 (twenty-second session): the compiled quantized decoder's CUDA tests with one row's autotune replayed
# (c.sh ran the kernels' own test). Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 200 python3 -m pytest -q tests/test_cuda.py -k "compiled_fast_decoder or int4_prompt" 2>&1 | grep -v "^\s*$" | tail -20 > $OUT/test_cuda_compiled_h200.log; tail -3 $OUT/test_cuda_compiled_h200.log
stamp end
