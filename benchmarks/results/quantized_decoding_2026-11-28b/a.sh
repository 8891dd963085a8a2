# 2026-11-28 (fifteenth session), one GPU: the input-major one-row prototype (next_word_major.py) against the shipped
# autotuned launch.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp kernels
timeout 520 python3 benchmarks/results/quantized_decoding_2026-11-28b/next_word_major.py --output $OUT/kernels_word_major.jsonl 2>&1 | grep -v "Backend impl\|FP_FUSION\|warn_once"
stamp end
