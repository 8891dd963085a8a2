# 2026-11-29 (twenty-eighth session), after b.sh, the session's last device minutes: bf16 at batch 1, HEAD's eager
# token loop (.head, 90848d3's tree) against TokenLoop, alternating. Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
for repeat in 1 2; do
  for tree in head loop; do
    [ $((SECONDS + 80)) -lt ${C_UNTIL:-330} ] || break 2
    stamp generate $tree $repeat
    root=.; [ $tree = head ] && root=.head
    timeout 100 python3 $root/benchmarks/bench_generate.py --modes embedding --methods fast --quantize none \
      --batch_sizes '' --speed_only --output /tmp/g.jsonl > /dev/null 2>&1
    grep -h '"batch1"\|"roofline"' /tmp/g.jsonl | sed "s/^{/{\"run\": \"$tree $repeat\", /" >> $OUT/generate_h200.jsonl
    rm -f /tmp/g.jsonl
    grep '"batch1"' $OUT/generate_h200.jsonl | tail -1 | cut -c1-190
  done
done
stamp end
