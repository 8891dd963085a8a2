# Thirtieth session: where the first token stands, bf16 / int8 / int4 in separate processes, three rounds in turn
# (the same code; earlier calls moved one process's first token by up to 0.7 ms), with batch 1 decoding. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
for repeat in 1 2 3; do
  for weights in none int8 int4; do
    [ $((SECONDS + 70)) -lt ${B_UNTIL:-590} ] || break 2
    stamp $weights $repeat
    timeout 90 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize $weights \
      --batch_sizes '' --speed_only --output /tmp/b.jsonl > /dev/null 2>&1
    grep -h '"batch1' /tmp/b.jsonl | sed "s/^{/{\"run\": $repeat, /" >> $OUT/first_token_h200.jsonl
    rm -f /tmp/b.jsonl
    tail -1 $OUT/first_token_h200.jsonl | cut -c1-220
  done
done
stamp end
