# 2026-11-28 (eighteenth session), one GPU: the final code (split tiles, autotune timing several rows by replays)
# against HEAD (3b92cff, .call23/base) in pairs, bf16 between them, and both codes' launches at 1-96 rows.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
K=benchmarks/results/quantized_decoding_2026-11-28d/kernels_by_rows.py
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks /tmp/base/ && cp .call23/base/*.py /tmp/base/
generate() {  # generate NAME DIRECTORY QUANTIZE TIMEOUT
  (cd $2 && timeout $4 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize $3 --batch_sizes 8,32 --speed_only --output $OUT/generate_$1_h200.jsonl > $OUT/generate_$1.log 2>&1); echo "rc $?"
  grep -h '"batch1"\|"batched"' $OUT/generate_$1_h200.jsonl | cut -c1-200
}
stamp new; generate final1 . int4 150
stamp base; generate base3 /tmp/base int4 90
stamp bf16; generate bf16_2 . none 70
stamp new; generate final2 . int4 90
stamp base; generate base4 /tmp/base int4 80
stamp kernels
timeout 45 python3 $K final 4 2>&1 | grep '^{' > $OUT/kernels_final_h200.jsonl
(cd /tmp/base && timeout 45 python3 $K base 4 2>&1 | grep '^{' > $OUT/kernels_base_h200.jsonl)
grep -h '"rows": 1,' $OUT/kernels_*_h200.jsonl | cut -c1-120
stamp end
