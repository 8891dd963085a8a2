# Final tiles (planes weights first for int4 up to 32 rows): kernels and end to end against HEAD, then GPU tests.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export TRITON_CACHE_DIR=/tmp/tc
stamp "kernels new vs head"
timeout 150 python3 .call23/k_sweep.py > $OUT/k.log 2>&1; echo rc $?
grep "^kern" $OUT/k.log | cut -c1-110
stamp "generate new"
timeout 170 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4,int8,none --batch_sizes 8,32 --speed_only --output $OUT/generate_new.jsonl > $OUT/generate.log 2>&1; echo "rc $?"
cp quantized_decode_kernels.py /tmp/new.py; cp .call23/old_kernels.py quantized_decode_kernels.py
stamp "generate HEAD"
timeout 110 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4,int8 --batch_sizes 8,32 --speed_only --output $OUT/generate_head.jsonl >> $OUT/generate.log 2>&1; echo "rc $?"
cp /tmp/new.py quantized_decode_kernels.py
grep -hE '"batch1"|"batched"' $OUT/generate_new.jsonl $OUT/generate_head.jsonl | sed 's/"mode": "embedding", //; s/"method": "fast", //' | cut -c1-220
stamp tests
timeout $((585 - SECONDS)) python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py -k "quantized or decode_kernels or continuous or server" > $OUT/test_cuda.log 2>&1; echo "rc $?"; tail -4 $OUT/test_cuda.log
stamp end
