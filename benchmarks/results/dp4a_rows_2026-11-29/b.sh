# 2026-11-29 (twenty-sixth session): stream_floor.py (read-only launches over each 7B product's bytes, beside the
# shipped launch), then long_prompts.py between 192 and 384 rows (where the dequantized copy starts to pay).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/dp4a_rows_2026-11-29
stamp stream floor
timeout 300 python3 $D/stream_floor.py --output $OUT/stream_floor_h200.jsonl > $OUT/stream_floor.log 2>&1
echo "rc $?"; grep -v '^{' $OUT/stream_floor.log | grep -v "^\s*$" | tail -5 | cut -c1-300
python3 $D/stream_summary.py $OUT/stream_floor_h200.jsonl
stamp long prompts
L=benchmarks/results/long_prompts_2026-11-29
timeout 200 python3 $L/long_prompts.py --rows 192,256,288,320,352,384 --output $OUT/crossover_h200.jsonl > $OUT/crossover.log 2>&1
echo "rc $?"; grep -v '^{' $OUT/crossover.log | grep -v "^\s*$" | tail -5 | cut -c1-300
python3 $L/summary.py $OUT/crossover_h200.jsonl
stamp end
