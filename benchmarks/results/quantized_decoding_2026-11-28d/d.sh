# 2026-11-28 (seventeenth session), one GPU: int4 tiles for the narrow weights (o, down) at 96 and 8 rows against the
# final code's autotuned launch (sweep_narrow.py).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/quantized_decoding_2026-11-28d
stamp prompt
timeout 250 python3 $D/sweep_narrow.py prompt 2>&1 | grep '^{' | tee $OUT/sweep_narrow_prompt_h200.jsonl | cut -c1-200
stamp batch
timeout 150 python3 $D/sweep_narrow.py batch 2>&1 | grep '^{' | tee $OUT/sweep_narrow_batch_h200.jsonl | cut -c1-200
stamp end
