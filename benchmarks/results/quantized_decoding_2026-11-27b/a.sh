source .call20/common.sh
stamp kernels
timeout 280 python3 benchmarks/profile_decode.py quantized --output $OUT/kernels.jsonl > $OUT/kernels.log 2>&1; echo "rc $?"
python3 .call20/summarize_kernels.py $OUT/kernels.jsonl
stamp generate quantized
timeout 200 python3 benchmarks/bench_generate.py --modes embedding --methods fast,generate --quantize int4,int8 --batch_sizes 8,32 --speed_only --output $OUT/generate.jsonl > $OUT/generate.log 2>&1; echo "rc $?"
stamp generate bf16
timeout 90 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none --batch_sizes 8,32 --speed_only --output $OUT/generate.jsonl >> $OUT/generate.log 2>&1; echo "rc $?"
grep -v '"kind": "device"' $OUT/generate.jsonl | cut -c1-260
stamp end
