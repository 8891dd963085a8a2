# 2026-11-28 (eighteenth session), one GPU: split tiles in ROWS_TILES (int4 up to 128 rows): GPU tests, launches at
# 1-96 rows and the tiles chosen, end to end int4 against HEAD (3b92cff, .call23/base) and bf16 in the same call.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/quantized_decoding_2026-11-28e
K=benchmarks/results/quantized_decoding_2026-11-28d/kernels_by_rows.py
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks /tmp/base/ && cp .call23/base/*.py /tmp/base/
stamp tests
timeout 230 python3 -m pytest -q -x tests/test_cuda.py -k "quantized" -p no:cacheprovider -s > $OUT/test_cuda_split_h200.log 2>&1; echo "rc $?"; tail -2 $OUT/test_cuda_split_h200.log
stamp kernels
timeout 100 python3 $K split 4 2>&1 | grep '^{' | tee $OUT/kernels_split_h200.jsonl | cut -c1-150
stamp "generate"
timeout 90 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_split_h200.jsonl > $OUT/generate_split.log 2>&1; echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_split_h200.jsonl | cut -c1-250
stamp "generate base"
(cd /tmp/base && timeout 80 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_base_h200.jsonl > $OUT/generate_base.log 2>&1); echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_base_h200.jsonl | cut -c1-250
stamp "generate bf16"
timeout 70 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none --batch_sizes 8,32 --speed_only --output $OUT/generate_bf16_h200.jsonl > $OUT/generate_bf16.log 2>&1; echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_bf16_h200.jsonl | cut -c1-250
stamp end
