# 2026-11-29 (twenty-fourth session), one GPU: the o and down products adding the residual and normalising in their
# launch (fast_decoder.project_residual_norm). The whole CUDA test file, the batch-1 int4 step's kernels, then int4's
# first token and decoding against HEAD (7551476, carried as .head with the repository's weights linked in), one
# process each. Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
ln -sfn $PWD/weights .head/weights
stamp tests
timeout 330 python3 -m pytest -q tests/test_cuda.py 2>&1 | grep -v "^\s*$" | tail -40 > $OUT/test_cuda_h200.log; tail -4 $OUT/test_cuda_h200.log
stamp step int4
timeout 100 python3 benchmarks/profile_decode.py step --quantize int4 --output $OUT/step_int4_h200.jsonl 2>&1 | grep '"step\|"kernel"' | cut -c1-170
for tree in new head; do
  stamp generate int4 $tree
  if [ $tree = new ]; then dir=.; else dir=.head; fi
  (cd $dir && timeout $((590 - SECONDS)) python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 \
    --batch_sizes 8 --speed_only --output $OUT/generate_int4_${tree}_h200.jsonl > /dev/null 2>&1)
  grep -h '"batch1"\|"batched"' $OUT/generate_int4_${tree}_h200.jsonl | cut -c1-220
done
stamp end
