# 2026-11-28 (twenty-second session): how one row's quantized products are tuned (row_tuning.py), then end to end int4
# with autotune's timing as it is and with `clean` timing (tuned_generate.py; each in a fresh Triton cache), then the
# step attention's CUDA tests (decode_kernels.last_to_arrive, 34e51d4, had not run on a GPU). Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
HERE=benchmarks/results/row_tuning_2026-11-28
stamp row tuning
timeout 230 python3 $HERE/row_tuning.py --output $OUT/row_tuning_h200.jsonl | grep '"pick"\|autotune_cache' | cut -c1-260
for timing in autotune clean; do
  [ $SECONDS -gt 430 ] && break
  stamp generate $timing
  TRITON_CACHE_DIR=$(mktemp -d) TRITON_PRINT_AUTOTUNING=1 timeout 85 python3 $HERE/tuned_generate.py $timing \
    --modes embedding --methods fast --quantize int4 --batch_sizes 8 --speed_only \
    --output $OUT/generate_${timing}_int4_h200.jsonl > $OUT/generate_${timing}_int4_h200.log 2>&1
  grep -h '"batch1"' $OUT/generate_${timing}_int4_h200.jsonl | cut -c1-200
done
stamp tests
timeout $((570 - SECONDS)) python3 -m pytest -q tests/test_cuda.py -k "step_attention or compiled" 2>&1 | grep -v "^\s*$" | tail -20 > $OUT/test_cuda_h200.log; tail -3 $OUT/test_cuda_h200.log
stamp end
