# Prepared for the next session (not run in the sixteenth): the one-row int4 pair loop with the next step's words
# prefetched (next_prefetch.py) against the shipped autotuned launch, one GPU.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp prefetch
timeout 200 python3 benchmarks/results/quantized_decoding_2026-11-28c/next_prefetch.py 2>&1 | grep '^{' | tee $OUT/prefetch.jsonl
stamp end
