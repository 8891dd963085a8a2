# 2026-11-28 (twenty-second session): one row's autotune timing replays (new) against Triton's default timing (base:
# .call23/base2/quantized_decode_kernels.py, the file before), end to end, int4 twice and int8 once each, in turn.
# One Triton cache directory (compiled kernels shared), its autotune results deleted before each run so that every
# run tunes afresh. Then the quantized kernels' CUDA test if time is left. Carry .whl and .call23.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks /tmp/base/ && cp .call23/base2/*.py /tmp/base/
export TRITON_CACHE_DIR=/tmp/triton_cache TRITON_PRINT_AUTOTUNING=1
generate() {  # NAME DIRECTORY QUANTIZE
  find $TRITON_CACHE_DIR -name '*.autotune.json' -delete 2>/dev/null
  (cd $2 && timeout 80 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize $3 \
    --batch_sizes 8 --speed_only --output $OUT/generate_$1_h200.jsonl > $OUT/generate_$1_h200.log 2>&1)
  grep -h '"batch1"' $OUT/generate_$1_h200.jsonl | cut -c1-150
}
for run in 1 2; do
  stamp base int4 $run; generate base_int4_$run /tmp/base int4
  stamp new int4 $run; generate new_int4_$run . int4
done
[ $SECONDS -lt 400 ] && { stamp base int8; generate base_int8 /tmp/base int8; }
[ $SECONDS -lt 470 ] && { stamp new int8; generate new_int8 . int8; }
if [ $SECONDS -lt 480 ]; then
  stamp tests
  timeout $((570 - SECONDS)) python3 -m pytest -q tests/test_cuda.py -k "quantized_kernels_match" 2>&1 | grep -v "^\s*$" | tail -20 > $OUT/test_cuda_h200.log; tail -3 $OUT/test_cuda_h200.log
fi
stamp end
