# 2026-11-29 (twenty-fourth session), one GPU: bf16 and int8 first token and decoding, the residual add and norm in
# the o and down launches (new) against HEAD (7551476, .head), alternating processes. Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
ln -sfn $PWD/weights .head/weights
for tree in new head; do
  for weights in none int8; do
    stamp generate $weights $tree
    if [ $tree = new ]; then dir=.; else dir=.head; fi
    (cd $dir && timeout $((590 - SECONDS)) python3 benchmarks/bench_generate.py --modes embedding --methods fast \
      --quantize $weights --batch_sizes 8 --speed_only --output $OUT/generate_${weights}_${tree}_h200.jsonl > /dev/null 2>&1)
    grep -h '"batch1"\|"batched"' $OUT/generate_${weights}_${tree}_h200.jsonl | cut -c1-220
  done
done
stamp end
