# 2026-11-29 (twenty-ninth session), one GPU: batched decoding's products through the Gluon prompt kernels (rows.py),
# then bench_generate at batch 8 and 32 with the shipped tree (TokenLoop; the twenty-first session's figures predate
# it). Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp rows
timeout 300 python3 benchmarks/results/small_rows_2026-11-29/rows.py 2>&1 | tee $OUT/rows_h200.jsonl | cut -c1-400
for weights in int8,int4 none; do
  [ $((SECONDS + 150)) -lt 590 ] || break
  stamp generate $weights
  timeout 150 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize $weights \
    --batch_sizes 8,32 --speed_only --output $OUT/generate_$weights.jsonl > /dev/null 2>&1
  grep -h '"batch' $OUT/generate_$weights.jsonl | cut -c1-220
done
stamp end
