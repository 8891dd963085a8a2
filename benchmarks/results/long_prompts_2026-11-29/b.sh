# 2026-11-29 (twenty-fifth session): the dequantized long-prompt products' CUDA tests, then the first token after a
# 1,024-token question (about 1,026 prompt rows), int8 and int4, this tree against HEAD (.head, carried) in
# alternating processes, bf16 once. Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
ln -sfn $PWD/weights .head/weights
stamp tests
timeout 200 python3 -m pytest -q -s tests/test_cuda.py -k "long_prompts or compiled_fast_decoder_decodes_quantized" 2>&1 \
  | grep -v "^\s*$" | tail -14 > $OUT/test_cuda_long_prompts_h200.log; tail -14 $OUT/test_cuda_long_prompts_h200.log
for tree in new head; do
  stamp generate $tree
  if [ $tree = new ]; then dir=.; else dir=.head; fi
  (cd $dir && timeout 200 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int8,int4 \
    --batch_sizes "" --speed_only --question_tokens 1024 --output $OUT/generate_${tree}_h200.jsonl > $OUT/generate_${tree}.log 2>&1)
  echo "rc $?"; grep -h '"batch1"' $OUT/generate_${tree}_h200.jsonl | cut -c1-260
done
stamp generate bf16
timeout $((590 - SECONDS)) python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none \
  --batch_sizes "" --speed_only --question_tokens 1024 --output $OUT/generate_bf16_h200.jsonl > $OUT/generate_bf16.log 2>&1
grep -h '"batch1"' $OUT/generate_bf16_h200.jsonl | cut -c1-260
stamp end
