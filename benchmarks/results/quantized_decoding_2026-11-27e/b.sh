# int4 several rows autotuned among planes and whole tiles (this commit) against HEAD, end to end; then GPU tests.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp "generate new"
timeout 200 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4,int8,none --batch_sizes 8,32 --speed_only --output $OUT/generate.jsonl > $OUT/generate.log 2>&1; echo "rc $?"
cp quantized_decode_kernels.py /tmp/new.py; cp .call23/old/quantized_decode_kernels.py quantized_decode_kernels.py
stamp "generate HEAD"
timeout 100 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_head.jsonl >> $OUT/generate.log 2>&1; echo "rc $?"
cp /tmp/new.py quantized_decode_kernels.py
grep -hE '"batch1"|"batched"' $OUT/generate.jsonl $OUT/generate_head.jsonl | cut -c1-230
stamp tests
timeout $((540 - SECONDS)) python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py -k "quantized or decode_kernels or continuous or server" > $OUT/test_cuda.log 2>&1; echo "rc $?"; tail -4 $OUT/test_cuda.log
stamp end
