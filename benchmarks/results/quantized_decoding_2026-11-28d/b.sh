# 2026-11-28 (seventeenth session), one GPU: the final int4 layout code (plane tiles gathering their inputs), its
# launches at 1-96 rows and the tiles autotune chose; the one-row prefetch prototype on the new layout; GPU tests; end to
# end with bf16 and int8 beside, and HEAD (d11e266, .call23/base) in the same call.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/quantized_decoding_2026-11-28d
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks /tmp/base/ && cp .call23/base/*.py /tmp/base/
stamp kernels
timeout 80 python3 $D/kernels_by_rows.py final 4 2>&1 | grep '^{' | tee $OUT/kernels_final_h200.jsonl | cut -c1-150
stamp prefetch
timeout 100 python3 $D/next_prefetch.py 2>&1 | grep '^{' | tee $OUT/prefetch_h200.jsonl
stamp tests
timeout 170 python3 -m pytest -q -x tests/test_cuda.py -k "quantized" -p no:cacheprovider -s > $OUT/test_cuda_final_h200.log 2>&1; echo "rc $?"; tail -2 $OUT/test_cuda_final_h200.log
stamp "generate final"
timeout 90 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_final_h200.jsonl > $OUT/generate_final.log 2>&1; echo "rc $?"
timeout 120 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none,int8 --batch_sizes 8,32 --speed_only --output $OUT/generate_bf16_int8_h200.jsonl > $OUT/generate_bf16_int8.log 2>&1; echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_final_h200.jsonl $OUT/generate_bf16_int8_h200.jsonl | cut -c1-250
stamp "generate base"
(cd /tmp/base && timeout 80 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_base2_h200.jsonl > $OUT/generate_base2.log 2>&1); echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_base2_h200.jsonl | cut -c1-250
stamp end
