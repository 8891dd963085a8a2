source .call20/common.sh
stamp generate quantized
timeout 220 python3 benchmarks/bench_generate.py --modes embedding --methods fast,generate --quantize int4,int8 --batch_sizes 8,32 --speed_only --output $OUT/generate.jsonl > $OUT/generate.log 2>&1; echo "rc $?"
stamp generate bf16
timeout 90 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none --batch_sizes 8,32 --speed_only --output $OUT/generate.jsonl >> $OUT/generate.log 2>&1; echo "rc $?"
grep -E '"batch1"|"batched"' $OUT/generate.jsonl | cut -c1-250
stamp end
