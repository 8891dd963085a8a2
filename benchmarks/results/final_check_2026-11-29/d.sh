# Thirtieth session: the 96-slot prefill's kernels by GPU time, int8 against bf16 (profile_decode.py ttft, which now
# lists them): where int8's first token lags. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
for weights in int8 none; do
  stamp $weights
  timeout 130 python3 benchmarks/profile_decode.py ttft --quantize $weights \
    --output $OUT/prefill_${weights}_h200.jsonl > $OUT/prefill_${weights}_h200.log 2>&1
  grep -h 'prefill_kernels\|"prefill"\|ttft_parts' $OUT/prefill_${weights}_h200.jsonl | cut -c1-230
done
stamp end
