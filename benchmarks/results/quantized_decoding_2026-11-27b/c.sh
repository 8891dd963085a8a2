source .call20/common.sh
stamp sweep
timeout 300 python3 benchmarks/profile_decode.py quantized --output $OUT/kernels.jsonl > $OUT/kernels.log 2>&1; echo "rc $?"
python3 .call20/pick.py $OUT/kernels.jsonl | tail -20
stamp generate
timeout 150 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4,int8,none --batch_sizes 8 --speed_only --output $OUT/generate.jsonl > $OUT/generate.log 2>&1; echo "rc $?"
grep -E '"batch1"|"batched"' $OUT/generate.jsonl | cut -c1-230
stamp end
