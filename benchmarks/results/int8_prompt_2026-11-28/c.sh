# 2026-11-28 (twenty-third session), one GPU: int8 prompts with (True, 128, 64, 64, 3, 1) among the prompt tiles:
# autotuned launches at 96 and 256 rows, the first token in alternating processes against HEAD (a copy of the tree
# with the tile list as before), then the quantized CUDA tests. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/int8_prompt_2026-11-28
rm -rf /tmp/head && mkdir -p /tmp/head && cp -r . /tmp/head/
python3 - <<'PY'
p = "/tmp/head/quantized_decode_kernels.py"; s = open(p).read()
new = "8: [(True, 128, 64, 128, 3, 1), (True, 128, 64, 64, 3, 1), (True, 64, 64, 256, 3, 1),\n                    (True, 64, 64, 128, 3, 1)]}"
assert new in s
open(p, "w").write(s.replace(new, "8: [(True, 128, 64, 128, 3, 1), (True, 64, 64, 256, 3, 1), (True, 64, 64, 128, 3, 1)]}"))
PY
for rows in 96 256; do
  stamp autotuned $rows rows
  timeout 100 python3 $D/prompt_tiles.py --rows $rows --baselines_only --output $OUT/autotuned_h200.jsonl 2>&1 | cut -c1-160
done
for run in 1 2; do
  for tree in new head; do
    stamp ttft $tree $run
    if [ $tree = new ]; then dir=.; else dir=/tmp/head; fi
    (cd $dir && timeout 100 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int8 \
      --batch_sizes 8 --speed_only --output $OUT/ttft_${tree}_${run}_h200.jsonl > /dev/null 2>&1)
    grep -h '"batch1"' $OUT/ttft_${tree}_${run}_h200.jsonl | cut -c1-150
  done
done
stamp tests
timeout $((585 - SECONDS)) python3 -m pytest -q tests/test_cuda.py -k "quantized" 2>&1 | grep -v "^\s*$" | tail -5 > $OUT/test_cuda_quantized_h200.log
tail -2 $OUT/test_cuda_quantized_h200.log
stamp end
