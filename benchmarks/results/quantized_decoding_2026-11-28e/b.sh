# 2026-11-28 (eighteenth session), one GPU: int4 tiles with their inputs split among 1-8 programs (SPLIT_K), at 8, 32
# and 96 rows, against the shipped launch and bf16 F.linear (sweep_tiles.py split).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/quantized_decoding_2026-11-28e
stamp compile
timeout 200 python3 $D/sweep_tiles.py compile split 15 2>&1 | tail -3
stamp time
timeout 300 python3 $D/sweep_tiles.py time split 96,8,32 2>&1 | grep '^{' > $OUT/sweep_split_h200.jsonl
python3 $D/summary.py $OUT/sweep_split_h200.jsonl
stamp end
