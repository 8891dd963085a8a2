source .call21/common.sh
stamp kernels
timeout 330 python3 .call21/sweep_int4.py > $OUT/kernels.log 2>&1; echo "rc $?"; grep -v -i warn $OUT/kernels.log | grep -v sweep
grep sweep $OUT/kernels.log | sort -t' ' -k2,2 -k 13n | cut -c1-160 > $OUT/sweep.txt
stamp generate new
timeout 200 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4,int8,none --batch_sizes 8,32 --speed_only --output $OUT/generate.jsonl > $OUT/generate.log 2>&1; echo "rc $?"
cp quantized_decode_kernels.py /tmp/new.py; cp .call21/head_quantized_decode_kernels.py quantized_decode_kernels.py
stamp generate HEAD
timeout 150 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4,int8 --batch_sizes 8,32 --speed_only --output $OUT/generate_head.jsonl >> $OUT/generate.log 2>&1; echo "rc $?"
cp /tmp/new.py quantized_decode_kernels.py
grep -hE '"batch1"|"batched"' $OUT/generate.jsonl $OUT/generate_head.jsonl | cut -c1-200
stamp end
