# Prepared for the next session (2026-11-28, twenty-second; not run: no device time left): int8's first token against
# bf16's, three processes in turn, each measuring bf16 then int8 (bench_generate.py --quantize none,int8; time to
# first token: median of 5), then the whole CUDA test file with the final code. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
for run in 1 2 3; do
  stamp run $run
  timeout 130 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none,int8 \
    --batch_sizes 8 --speed_only --output $OUT/ttft_${run}_h200.jsonl > /dev/null 2>&1
  grep -h '"batch1"' $OUT/ttft_${run}_h200.jsonl | cut -c1-130
done
stamp tests
timeout $((590 - SECONDS)) python3 -m pytest -q tests/test_cuda.py 2>&1 | grep -v "^\s*$" | tail -20 > $OUT/test_cuda_h200.log
tail -3 $OUT/test_cuda_h200.log
stamp end
