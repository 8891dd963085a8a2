# 2026-11-28 (sixteenth session), one GPU: several-row int4 tiles in 16-bit pairs (sweep.py rows) against the shipped
# autotuned launch; one-row block sizes beyond ROW_CONFIGS (sweep.py row); where a batch-1 int4 step and its first
# token go (profile_decode.py step ttft).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/quantized_decoding_2026-11-28c
stamp rows
timeout 330 python3 $D/sweep.py rows 2>&1 | grep -v "Backend impl" | tee $OUT/sweep_rows.jsonl | grep -v '^{' | tail -5
stamp row
timeout 90 python3 $D/sweep.py row 2>&1 | grep -v "Backend impl" | tee $OUT/sweep_row.jsonl | grep -v '^{' | tail -5
stamp profile
timeout 100 python3 benchmarks/profile_decode.py step ttft --quantize int4 --output $OUT/profile_int4.jsonl > $OUT/profile_int4.log 2>&1; echo "rc $?"
stamp end
