# 2026-11-29 (twenty-sixth session): ladder.py, from a read-only launch to the dp4a product, one load at a time.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/dp4a_rows_2026-11-29
stamp ladder
timeout 420 python3 $D/ladder.py --output $OUT/ladder_h200.jsonl > $OUT/ladder.log 2>&1
echo "rc $?"; grep -v '^{' $OUT/ladder.log | grep -v "^\s*$" | tail -5 | cut -c1-300
python3 $D/ladder_summary.py $OUT/ladder_h200.jsonl
stamp end
