# 2026-11-29 (twenty-sixth session): flat_rows.py again, the limbs also made in the kernel from the bf16 input (INLINE),
# more tiles for down; int8 over the bf16 input again. Against the shipped launch and the read-only floor.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/dp4a_rows_2026-11-29
stamp flat rows
timeout 480 python3 $D/flat_rows.py --direct --output $OUT/flat_rows_h200.jsonl > $OUT/flat_rows.log 2>&1
echo "rc $?"; grep -v '^{' $OUT/flat_rows.log | grep -v "^\s*$" | tail -5 | cut -c1-300
python3 $D/flat_summary.py $OUT/flat_rows_h200.jsonl
stamp end
