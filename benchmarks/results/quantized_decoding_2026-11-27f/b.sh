source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export TRITON_CACHE_DIR=/tmp/tc
stamp "kernels new vs head"
STAGES=1 timeout 230 python3 .call23/k_sweep.py > $OUT/k.log 2>&1; echo rc $?
grep "^kern" $OUT/k.log | grep -v "num_stages" | cut -c1-150
grep "^kern" $OUT/k.log | grep "num_stages" | sed 's/.BLOCK_M.*num_warps.: 4, //' | cut -c1-150
stamp "generate new"
timeout 200 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4,int8,none --batch_sizes 8,32 --speed_only --output $OUT/generate_new.jsonl > $OUT/generate.log 2>&1; echo "rc $?"
cp quantized_decode_kernels.py /tmp/new.py; cp .call23/old_kernels.py quantized_decode_kernels.py
stamp "generate HEAD"
timeout 130 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4,int8 --batch_sizes 8,32 --speed_only --output $OUT/generate_head.jsonl >> $OUT/generate.log 2>&1; echo "rc $?"
cp /tmp/new.py quantized_decode_kernels.py
grep -hE '"batch1"|"batched"' $OUT/generate_new.jsonl $OUT/generate_head.jsonl | cut -c1-300
stamp end
