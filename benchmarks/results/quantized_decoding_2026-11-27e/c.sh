# int4 first call with autotune timings cached on disk: cold, then warm with the cache flag, then warm without it.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export TRITON_CACHE_DIR=/root/triton_cache
G() { timeout 110 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/first_call_$1.jsonl > $OUT/first_call_$1.log 2>&1; echo "rc $?"; grep -h '"batch1"' $OUT/first_call_$1.jsonl | cut -c1-230; }
stamp "cold cache, timings cached"; G cold
stamp "warm cache, timings cached"; G warm_cached
cp quantized_decode_kernels.py /tmp/new.py; cp .call23/noflag_quantized_decode_kernels.py quantized_decode_kernels.py
stamp "warm cache, timings not cached"; G warm_not_cached
cp /tmp/new.py quantized_decode_kernels.py; ls $TRITON_CACHE_DIR | wc -l; find $TRITON_CACHE_DIR -name "*.autotune.json" | wc -l
stamp end
