# 2026-11-29 (twenty-fifth session): the quantized CUDA tests with the dequantized long-prompt products in, then the
# first token after a 3,000-token question (about 3,002 prompt rows), int8 and int4, HEAD (.head) first this time,
# then this tree, bf16 once. Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
ln -sfn $PWD/weights .head/weights
stamp tests
timeout 170 python3 -m pytest -q tests/test_cuda.py -k "quantized_kernels_match or int4_prompt or residual_and_normalise \
  or long_prompts" 2>&1 | grep -v "^\s*$" | tail -6 > $OUT/test_cuda_quantized_h200.log; tail -6 $OUT/test_cuda_quantized_h200.log
for tree in head new; do
  stamp generate $tree
  if [ $tree = new ]; then dir=.; else dir=.head; fi
  (cd $dir && timeout 160 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int8,int4 \
    --batch_sizes "" --speed_only --question_tokens 3000 --output $OUT/generate_${tree}_h200.jsonl > $OUT/generate_${tree}.log 2>&1)
  echo "rc $?"; grep -h '"batch1"' $OUT/generate_${tree}_h200.jsonl | cut -c1-260
done
stamp generate bf16
timeout $((530 - SECONDS)) python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none \
  --batch_sizes "" --speed_only --question_tokens 3000 --output $OUT/generate_bf16_h200.jsonl > $OUT/generate_bf16.log 2>&1
grep -h '"batch1"' $OUT/generate_bf16_h200.jsonl | cut -c1-260
stamp end
