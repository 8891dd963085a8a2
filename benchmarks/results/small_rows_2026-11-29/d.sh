# 2026-11-29 (twenty-ninth session), one GPU: c.sh's CUDA tests ran out of their time before the compiled int4
# decoder's; that test (both formats) alone, then a second round of c.sh's bench_generate, HEAD first. Carry .whl
# and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 200 python3 -m pytest -x -q -p no:cacheprovider tests/test_cuda.py -k "decodes_quantized" --tb=short -p no:logging --show-capture=no 2>&1 | grep -v DEBUG | tail -30 | tee $OUT/test_cuda_decoder_h200.log
for tree in head new; do
  [ $((SECONDS + 120)) -lt ${D_UNTIL:-400} ] || break
  stamp generate $tree 2
  root=.; [ $tree = head ] && root=.head
  timeout 120 python3 $root/benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 \
    --batch_sizes 8,32 --speed_only --output /tmp/g.jsonl > /dev/null 2>&1
  grep -h '"batch' /tmp/g.jsonl | sed "s/^{/{\"run\": \"$tree 2\", /" >> $OUT/generate_h200.jsonl
  rm -f /tmp/g.jsonl
  grep "\"$tree 2\"" $OUT/generate_h200.jsonl | cut -c1-200
done
stamp end
