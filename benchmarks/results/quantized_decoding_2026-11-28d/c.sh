# 2026-11-28 (seventeenth session), one GPU: the final code (int4 several rows always whole tiles, the plane tiles
# removed; three whole-tile candidates at up to 16 rows): launches at 1-96 rows (int4 and int8) and the tiles chosen,
# GPU tests, end to end int4 and bf16, and HEAD (d11e266, .call23/base) int4 in the same call.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/quantized_decoding_2026-11-28d
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks /tmp/base/ && cp .call23/base/*.py /tmp/base/
stamp kernels
timeout 120 python3 $D/kernels_by_rows.py whole 4,8 2>&1 | grep '^{' | tee $OUT/kernels_whole_h200.jsonl | cut -c1-110
stamp tests
timeout 170 python3 -m pytest -q -x tests/test_cuda.py -k "quantized" -p no:cacheprovider -s > $OUT/test_cuda_whole_h200.log 2>&1; echo "rc $?"; tail -2 $OUT/test_cuda_whole_h200.log
stamp "generate"
timeout 90 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_whole_h200.jsonl > $OUT/generate_whole.log 2>&1; echo "rc $?"
timeout 70 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none --batch_sizes 8,32 --speed_only --output $OUT/generate_whole_bf16_h200.jsonl > $OUT/generate_whole_bf16.log 2>&1; echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_whole_h200.jsonl $OUT/generate_whole_bf16_h200.jsonl | cut -c1-250
stamp "generate base"
(cd /tmp/base && timeout 80 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_base3_h200.jsonl > $OUT/generate_base3.log 2>&1); echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_base3_h200.jsonl | cut -c1-250
stamp end
