source .call20/common.sh
stamp candidates
timeout 200 python3 .call20/g_kernels.py 2>&1 | grep -v Warning
stamp generate
timeout 150 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4,none --batch_sizes 8 --speed_only --output $OUT/generate.jsonl > $OUT/generate.log 2>&1; echo "rc $?"
grep -E '"batch1"' $OUT/generate.jsonl | cut -c1-230
stamp end
