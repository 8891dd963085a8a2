# 2026-11-29 (twenty-fourth session), one GPU: whether the first token moved (a.sh-c.sh read int8's 0.3-0.4 ms above
# HEAD's): the int8 first token's parts (profile_decode.py ttft: the tower, the prefill eager and CUDA-graphed), HEAD
# (.head) and new alternating, two processes each. Carry .whl and .head.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
ln -sfn $PWD/weights .head/weights
for run in 1 2; do
  for tree in head new; do
    stamp ttft int8 $tree $run
    if [ $tree = new ]; then dir=.; else dir=.head; fi
    (cd $dir && timeout 100 python3 benchmarks/profile_decode.py ttft --quantize int8 \
      --output $OUT/ttft_int8_${tree}_${run}_h200.jsonl > /dev/null 2>&1)
    grep -h '"ttft_parts"' $OUT/ttft_int8_${tree}_${run}_h200.jsonl | cut -c1-300
  done
done
stamp end
