# 2026-11-28 (eighteenth session), one GPU: int8 tiles with their steps split among 1-8 programs at 8, 32 and 96 rows
# against the shipped launch and bf16 (sweep_tiles.py split8); int8's buckets list no split tile yet.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/quantized_decoding_2026-11-28e
stamp compile
timeout 200 python3 $D/sweep_tiles.py compile split8 15 2>&1 | tail -3
stamp time
timeout 300 python3 $D/sweep_tiles.py time split8 8,32,96 2>&1 | grep '^{' > $OUT/sweep_split8_h200.jsonl
python3 $D/summary.py $OUT/sweep_split8_h200.jsonl
stamp end
