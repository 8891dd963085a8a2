# a.sh's row_tuning.py again (its first run stopped at Triton 3.6's do_bench returning a float for one quantile).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp row tuning
timeout 400 python3 benchmarks/results/row_tuning_2026-11-28/row_tuning.py --output $OUT/row_tuning_h200.jsonl | grep '"pick"\|autotune_cache' | cut -c1-300
stamp end
