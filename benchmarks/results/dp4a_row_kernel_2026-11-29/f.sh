# 2026-11-29 (twenty-seventh session), after e.sh in the same call: bf16 against int8 (the committed tree) at batch 1,
# for the first token on the benchmark's 96-token prompt, alternating processes while the call's time lasts.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
for repeat in 1 2; do
  for weights in none int8; do
    [ $((SECONDS + 100)) -lt ${F_UNTIL:-400} ] || break 2
    stamp generate $weights $repeat
    timeout 100 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize $weights \
      --batch_sizes '' --speed_only --output $OUT/generate_${weights}_${repeat}_h200.jsonl > /dev/null 2>&1
    grep -h '"batch1"' $OUT/generate_${weights}_${repeat}_h200.jsonl | cut -c1-200
  done
done
stamp end
