# Thirtieth session: where the first token and a batch-1 step go on the shipped tree, bf16 / int8 / int4
# (profile_decode.py ttft step: the tower and the prefill, eager and CUDA-graphed; the step's replay and its kernels
# by GPU time). Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
for weights in int8 none int4; do
  [ $((SECONDS + 120)) -lt ${C_UNTIL:-560} ] || break
  stamp $weights
  timeout 150 python3 benchmarks/profile_decode.py ttft step --quantize $weights \
    --output $OUT/profile_${weights}_h200.jsonl > $OUT/profile_${weights}_h200.log 2>&1
  tail -25 $OUT/profile_${weights}_h200.log | cut -c1-200
done
stamp end
