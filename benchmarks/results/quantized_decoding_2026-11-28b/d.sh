# 2026-11-28 (fifteenth session), one GPU: the one-row int4 kernel with bf16-pair products (next_packed.py) against the
# shipped autotuned launch.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp packed
timeout 400 python3 benchmarks/results/quantized_decoding_2026-11-28b/next_packed.py 2>&1 | grep -v "Backend impl\|FP_FUSION\|warn_once"
stamp end
