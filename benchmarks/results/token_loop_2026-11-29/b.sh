# 2026-11-29 (twenty-eighth session), one GPU: the generation loop in one CUDA graph a token (TokenLoop) against
# HEAD's eager loop around the step's graph (.head = the tree of 90848d3, carried): the CUDA tests of the fast path
# first, then bench_generate batch 1, the two trees alternating while the call's time lasts. Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 240 python3 -m pytest -x -q -p no:cacheprovider tests/test_cuda.py -k "compiled_fast_path or continuous_batching or decodes_quantized or pipeline_and_inference or server_answers" --tb=short -p no:logging --show-capture=no 2>&1 | grep -v DEBUG | tail -30 | tee $OUT/test_cuda_h200.log; grep -q " failed" $OUT/test_cuda_h200.log && exit 1
for repeat in 1 2 3; do
  for tree in head loop; do
    [ $((SECONDS + 130)) -lt ${B_UNTIL:-580} ] || break 2
    stamp generate $tree $repeat
    root=.; [ $tree = head ] && root=.head
    timeout 130 python3 $root/benchmarks/bench_generate.py --modes embedding --methods fast --quantize ${B_WEIGHTS:-int8,int4} \
      --batch_sizes '' --speed_only --output /tmp/g.jsonl > /dev/null 2>&1
    grep -h '"batch1"\|"roofline"' /tmp/g.jsonl | sed "s/^{/{\"run\": \"$tree $repeat\", /" >> $OUT/generate_h200.jsonl
    rm -f /tmp/g.jsonl
    grep '"batch1"' $OUT/generate_h200.jsonl | tail -2 | cut -c1-190
  done
done
stamp end
