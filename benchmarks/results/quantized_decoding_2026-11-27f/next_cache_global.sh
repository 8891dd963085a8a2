# Ready for the next session, not yet run (one H100): one-row weight loads .cg against evict-first, kernels then end
# to end (the .cg file copied over quantized_decode_kernels.py for bench_generate, then restored); then one decode
# step's kernels for bf16, int8 and int4 (where int8's 0.8 ms a step outside its products goes, against bf16's ~0.55).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
R=benchmarks/results/quantized_decoding_2026-11-27f
stamp kernels
timeout 200 python3 $R/next_cache_global.py > $OUT/cg.log 2>&1; echo "rc $?"; grep -v -i warn $OUT/cg.log | tail -32
stamp "generate shipped"
timeout 150 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4,int8,none --batch_sizes 8 --speed_only --output $OUT/generate_shipped.jsonl > $OUT/generate.log 2>&1; echo "rc $?"
cp quantized_decode_kernels.py /tmp/shipped.py; python3 $R/next_cache_global.py /tmp/cg.py && cp /tmp/cg.py quantized_decode_kernels.py
stamp "generate .cg"
timeout 120 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4,int8 --batch_sizes 8 --speed_only --output $OUT/generate_cg.jsonl >> $OUT/generate.log 2>&1; echo "rc $?"
cp /tmp/shipped.py quantized_decode_kernels.py
grep -h '"batch1"' $OUT/generate_shipped.jsonl $OUT/generate_cg.jsonl | cut -c1-220
for weights in none int8 int4; do
  stamp "step kernels, $weights"
  timeout 120 python3 benchmarks/profile_decode.py step --quantize $weights --output $OUT/step_kernels.jsonl > /dev/null 2>&1; echo "rc $?"
done
cut -c1-200 $OUT/step_kernels.jsonl
stamp end
