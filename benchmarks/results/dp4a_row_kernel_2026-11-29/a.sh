# 2026-11-29 (twenty-sixth session), one GPU: one-row products on dp4a (quantized_row_kernel.py). The CUDA tests of the
# quantized kernels (stops here if one fails), then int4 and int8 batch 1 and first token, new against HEAD (f092f97,
# carried as .head with the repository's weights linked in), alternating processes. Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
ln -sfn $PWD/weights .head/weights
stamp tests
timeout 240 python3 -m pytest -q tests/test_cuda.py -k "dp4a or quantized or residual" 2>&1 | grep -v "^\s*$" | tail -40 > $OUT/test_cuda_h200.log
tail -4 $OUT/test_cuda_h200.log
if ! grep -q " passed" $OUT/test_cuda_h200.log || grep -q "failed\|error" $OUT/test_cuda_h200.log; then stamp "tests failed: stop"; exit 1; fi
for weights in int4 int8; do
  for tree in new head; do
    stamp generate $weights $tree
    if [ $tree = new ]; then dir=.; else dir=.head; fi
    (cd $dir && timeout $((590 - SECONDS)) python3 benchmarks/bench_generate.py --modes embedding --methods fast \
      --quantize $weights --batch_sizes '' --speed_only --output $OUT/generate_${weights}_${tree}_h200.jsonl > /dev/null 2>&1)
    grep -h '"batch1"' $OUT/generate_${weights}_${tree}_h200.jsonl | cut -c1-260
  done
done
stamp end
