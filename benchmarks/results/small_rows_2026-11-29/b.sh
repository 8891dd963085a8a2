# 2026-11-29 (twenty-ninth session), one GPU: the Gluon kernels with split inputs (split.py), then bench_generate's
# int4 batch 8 and 32 (a.sh's run ran out of time before them). Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp split
timeout 330 python3 benchmarks/results/small_rows_2026-11-29/split.py 2>&1 | tee $OUT/split_h200.jsonl | cut -c1-600
stamp generate int4
timeout 200 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 \
  --batch_sizes 8,32 --speed_only --output $OUT/generate_int4.jsonl > /dev/null 2>&1
grep -h '"batch' $OUT/generate_int4.jsonl | cut -c1-220
stamp end
