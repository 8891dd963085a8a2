# Prepared for the next session (not run in the seventeenth): programmatic dependent launch between the one-row int4
# products of a 32-layer chain (next_pdl.py) against the same kernel without it and the shipped launches, one GPU.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp pdl
timeout 200 python3 benchmarks/results/quantized_decoding_2026-11-28d/next_pdl.py 2>&1 | grep '^{' | tee $OUT/pdl_h200.jsonl
stamp end
