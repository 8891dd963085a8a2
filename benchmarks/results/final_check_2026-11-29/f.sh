# Prepared for the next session (thirtieth session's device time was spent): the whole tests/test_cuda.py on the tree
# with bf16's several-row products in the compiled graph (194e978) and int4's bf16 routing by compute capability
# (457b559), then bf16 batch 8 / 32 and the first token against 5c359ff (.head = git archive 5c359ff, weights linked),
# alternating, two rounds (e.sh had one pair). Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 420 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py -p no:logging --show-capture=no --tb=short \
  -rs 2>&1 | grep -v DEBUG | tail -12 | tee $OUT/test_cuda_h200.log
for repeat in 1 2; do
  for tree in new head; do
    [ $((SECONDS + 70)) -lt ${F_UNTIL:-590} ] || break 2
    root=.; [ $tree = head ] && root=.head
    stamp generate $tree $repeat
    (cd $root && timeout 70 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none \
      --batch_sizes 8,32 --speed_only --output /tmp/f.jsonl > /dev/null 2>&1)
    grep -h '"batch' /tmp/f.jsonl | sed "s/^{/{\"run\": \"$tree $repeat\", /" >> $OUT/generate_bf16_rows_h200.jsonl
    rm -f /tmp/f.jsonl
    grep "\"$tree $repeat\"" $OUT/generate_bf16_rows_h200.jsonl | cut -c1-200
  done
done
stamp end
