# Prepared 2026-11-29 (twenty-fourth session), not yet run: limbs.patch (int8 products of 32 rows or more on the int8
# tensor cores through fast_decoder.project, in the compiled graph) applied to a copy of the tree: its CUDA tests, then
# int8's first token and speeds against the unpatched tree in alternating processes, bf16 once. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/int8_limbs_2026-11-29
rm -rf /tmp/limbs && mkdir -p /tmp/limbs && cp -r . /tmp/limbs/
(cd /tmp/limbs && (git apply $D/limbs.patch 2>/dev/null || patch -p1 < $D/limbs.patch)) || { echo "patch failed"; exit 1; }
grep -c "def limb_product" /tmp/limbs/quantized_decode_kernels.py
stamp tests
(cd /tmp/limbs && timeout 200 python3 -m pytest -q -s tests/test_cuda.py -k "int8_prompts or compiled_fast_decoder" 2>&1 \
  | grep -v "^\s*$" | tail -20) > $OUT/test_cuda_limbs_h200.log; tail -8 $OUT/test_cuda_limbs_h200.log
for run in 1 2; do
  for tree in limbs head; do
    stamp generate int8 $tree $run
    if [ $tree = limbs ]; then dir=/tmp/limbs; else dir=.; fi
    (cd $dir && timeout 100 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int8 \
      --batch_sizes 8,32 --speed_only --output $OUT/generate_int8_${tree}_${run}_h200.jsonl > /dev/null 2>&1)
    grep -h '"batch1"\|"batched"\|"logit_error"' $OUT/generate_int8_${tree}_${run}_h200.jsonl | cut -c1-200
  done
done
stamp generate bf16
timeout $((590 - SECONDS)) python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none \
  --batch_sizes 8 --speed_only --output $OUT/generate_bf16_h200.jsonl > /dev/null 2>&1
grep -h '"batch1"' $OUT/generate_bf16_h200.jsonl | cut -c1-200
stamp end
