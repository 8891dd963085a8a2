# 2026-11-28 (fifteenth session), one GPU: the unrolled one-row int4 prototype (next_unrolled.py), then b.sh's profile.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp unrolled
timeout 240 python3 benchmarks/results/quantized_decoding_2026-11-28b/next_unrolled.py 2>&1 | grep -v "Backend impl\|FP_FUSION\|warn_once"
cp /tmp/kernels_unrolled.jsonl $OUT/ 2>/dev/null
bash benchmarks/results/quantized_decoding_2026-11-28b/b.sh
