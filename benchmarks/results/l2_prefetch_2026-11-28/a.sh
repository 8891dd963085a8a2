# 2026-11-28 (twenty-third session), one GPU: side-branch L2 prefetch of the next product (side_prefetch.py), then
# last session's prepared e.sh comparison: int8's first token against bf16's in three processes. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp side prefetch
timeout 240 python3 benchmarks/results/l2_prefetch_2026-11-28/side_prefetch.py --output $OUT/side_prefetch_h200.jsonl > $OUT/side_prefetch.log 2>&1; echo "rc $?"
tail -3 $OUT/side_prefetch.log | cut -c1-300
for run in 1 2 3; do
  stamp ttft run $run
  timeout 110 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none,int8 \
    --batch_sizes 8 --speed_only --output $OUT/ttft_${run}_h200.jsonl > /dev/null 2>&1
  grep -h '"batch1"' $OUT/ttft_${run}_h200.jsonl | cut -c1-130
done
stamp end
