# 2026-11-29 (twenty-ninth session), one GPU: int4's several-row products through quantized_prompt_kernel.py's
# autotuned tiles (2-287 rows, splits): the CUDA tests, the launch against the Triton tiles at each bucket of rows
# (buckets.py), then bench_generate int4 (batch 1, 8, 32, first token) with this tree and HEAD's (.head, 99126fe)
# alternating. Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 230 python3 -m pytest -x -q -p no:cacheprovider tests/test_cuda.py -k "prompt_kernel or quantized_kernels_match or decodes_quantized or long_prompts" --tb=short -p no:logging --show-capture=no 2>&1 | grep -v DEBUG | tail -30 | tee $OUT/test_cuda_h200.log; grep -q " failed\|rror" $OUT/test_cuda_h200.log && exit 1
stamp buckets
timeout 150 python3 benchmarks/results/small_rows_2026-11-29/buckets.py 2>&1 | tee $OUT/buckets_h200.jsonl | cut -c1-330
for repeat in 1 2; do
  for tree in new head; do
    [ $((SECONDS + 140)) -lt ${C_UNTIL:-590} ] || break 2
    stamp generate $tree $repeat
    root=.; [ $tree = head ] && root=.head
    timeout 140 python3 $root/benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 \
      --batch_sizes 8,32 --speed_only --output /tmp/g.jsonl > /dev/null 2>&1
    grep -h '"batch' /tmp/g.jsonl | sed "s/^{/{\"run\": \"$tree $repeat\", /" >> $OUT/generate_h200.jsonl
    rm -f /tmp/g.jsonl
    grep "\"$tree $repeat\"" $OUT/generate_h200.jsonl | cut -c1-200
  done
done
stamp end
