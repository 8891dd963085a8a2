source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp attention
timeout 150 python3 benchmarks/profile_decode.py attention --output $OUT/attention.jsonl > $OUT/attention.log 2>&1; echo "rc $?"
grep '"attention"' $OUT/attention.jsonl | cut -c1-200
stamp tests
timeout 200 python3 -m pytest -q -x tests/test_cuda.py -k "quantized or decode_kernels or decode_attention or fast or continuous or server or pipeline" > $OUT/test_cuda.log 2>&1; echo "rc $?"; tail -3 $OUT/test_cuda.log
stamp "generate new"
timeout 260 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4,int8,none --batch_sizes 8,32 --speed_only --output $OUT/generate_new.jsonl > $OUT/generate_new.log 2>&1; echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_new.jsonl | cut -c1-230
stamp end
