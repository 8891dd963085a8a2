# 2026-11-29 (twenty-fifth session): long_prompts.py, the shipped launch against the dequantized copy + cuBLAS.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/long_prompts_2026-11-29
stamp products
timeout 500 python3 $D/long_prompts.py --output $OUT/long_prompts_h200.jsonl > $OUT/long_prompts.log 2>&1
echo "rc $?"; grep -v '^{' $OUT/long_prompts.log | grep -v "^\s*$" | tail -4 | cut -c1-300
python3 $D/summary.py $OUT/long_prompts_h200.jsonl
stamp end
