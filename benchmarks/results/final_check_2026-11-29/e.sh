# Thirtieth session: bf16 several-row products as plain F.linear in the compiled layer (no copy for one weight, the
# gate fused by the compiler) against HEAD (.head = 5c359ff): the compiled fast path's CUDA test, then bf16 batch 8
# and 32, new then HEAD. Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 50 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py -k "compiled_fast_path_equals_generate" \
  -p no:logging --show-capture=no --tb=short 2>&1 | grep -v DEBUG | tail -5 | tee $OUT/test_cuda_bf16_rows_h200.log
for tree in new head; do
  root=.; [ $tree = head ] && root=.head
  stamp generate $tree
  (cd $root && timeout 70 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none \
    --batch_sizes 8,32 --speed_only --output /tmp/e.jsonl > /dev/null 2>&1)
  grep -h '"batch' /tmp/e.jsonl | sed "s/^{/{\"run\": \"$tree\", /" >> $OUT/generate_bf16_rows_h200.jsonl
  rm -f /tmp/e.jsonl
  grep "\"$tree\"" $OUT/generate_bf16_rows_h200.jsonl | cut -c1-200
done
stamp end
