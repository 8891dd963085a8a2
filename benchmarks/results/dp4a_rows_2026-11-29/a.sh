# 2026-11-29 (twenty-sixth session): dp4a_rows.py, batch-1 int4 and int8 products on dp4a over int8 limbs of the
# input, against the shipped autotuned launch and bf16 cuBLAS.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/dp4a_rows_2026-11-29
stamp sweep
timeout 480 python3 $D/dp4a_rows.py --output $OUT/dp4a_rows_h200.jsonl > $OUT/dp4a_rows.log 2>&1
echo "rc $?"; grep -v '^{' $OUT/dp4a_rows.log | grep -v "^\s*$" | tail -5 | cut -c1-300
python3 $D/summary.py $OUT/dp4a_rows_h200.jsonl
stamp end
