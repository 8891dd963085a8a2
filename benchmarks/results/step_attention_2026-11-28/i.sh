# 2026-11-28 (twenty-first session): the whole CUDA test file with the final code (5979c61's decoder), then the
# batch-1 int8 step's kernels (g.sh's int8 half) if time is left.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 380 python3 -m pytest -q tests/test_cuda.py 2>&1 | grep -v "^\s*$" | tail -30 > $OUT/test_cuda_h200.log; tail -6 $OUT/test_cuda_h200.log
[ $SECONDS -lt 400 ] && stamp step int8 && timeout $((470 - SECONDS)) python3 benchmarks/profile_decode.py step --quantize int8 --output $OUT/step_int8_h200.jsonl 2>&1 | grep '"step\|"kernel"' | cut -c1-170
stamp end
