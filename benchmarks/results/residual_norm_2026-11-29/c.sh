# 2026-11-29 (twenty-fourth session), one GPU: a second round of a.sh's and b.sh's first token and decoding, HEAD
# (7551476, .head) first this time, bf16, int8 and int4 in alternating processes. Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
ln -sfn $PWD/weights .head/weights
for weights in int4 int8 none; do
  for tree in head new; do
    stamp generate $weights $tree
    if [ $tree = new ]; then dir=.; else dir=.head; fi
    (cd $dir && timeout $((590 - SECONDS)) python3 benchmarks/bench_generate.py --modes embedding --methods fast \
      --quantize $weights --batch_sizes 8 --speed_only --output $OUT/generate_${weights}_${tree}_h200.jsonl > /dev/null 2>&1)
    grep -h '"batch1"' $OUT/generate_${weights}_${tree}_h200.jsonl | cut -c1-220
  done
done
stamp end
