# 2026-11-29 (twenty-sixth session), one GPU: int4 and int8 batch 1 and first token with one-row products on dp4a
# (new) against HEAD (f092f97, .head), alternating processes; then the compiled quantized decoder's CUDA tests (a.sh's
# test run passed the kernels' ten tests and was cut at 240 s before these two). Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
ln -sfn $PWD/weights .head/weights
for weights in int4 int8; do
  for tree in new head; do
    stamp generate $weights $tree
    if [ $tree = new ]; then dir=.; else dir=.head; fi
    (cd $dir && timeout 110 python3 benchmarks/bench_generate.py --modes embedding --methods fast \
      --quantize $weights --batch_sizes '' --speed_only --output $OUT/generate_${weights}_${tree}_h200.jsonl > /dev/null 2>&1)
    grep -h '"batch1"' $OUT/generate_${weights}_${tree}_h200.jsonl | cut -c1-260
  done
done
stamp tests
timeout $((585 - SECONDS)) python3 -m pytest -q tests/test_cuda.py -k "compiled_fast_decoder_decodes_quantized" 2>&1 | grep -v "^\s*$" | tail -20 > $OUT/test_cuda_compiled_decoder_h200.log
tail -3 $OUT/test_cuda_compiled_decoder_h200.log
stamp end
