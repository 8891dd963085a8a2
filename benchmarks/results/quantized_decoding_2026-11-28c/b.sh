# 2026-11-28 (sixteenth session), one GPU: the int4 whole tiles in 16-bit pairs (retuned ROWS_TILES) against HEAD's
# kernels (ecb465a, carried as .call23/base): GPU tests, end to end (first token, batch 1/8/32), several-row launches.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/quantized_decoding_2026-11-28c
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks /tmp/base/ && cp .call23/base/*.py /tmp/base/
stamp tests
timeout 200 python3 -m pytest -q -x tests/test_cuda.py -k "quantized" -p no:cacheprovider -s > $OUT/test_cuda.log 2>&1; echo "rc $?"; tail -3 $OUT/test_cuda.log
stamp "generate new"
timeout 130 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_new.jsonl > $OUT/generate_new.log 2>&1; echo "rc $?"
grep -h '"batch1"\|"batched"\|ttft' $OUT/generate_new.jsonl | cut -c1-250
stamp "generate base"
(cd /tmp/base && timeout 130 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_base.jsonl > $OUT/generate_base.log 2>&1); echo "rc $?"
grep -h '"batch1"\|"batched"\|ttft' $OUT/generate_base.jsonl | cut -c1-250
stamp kernels
timeout 60 python3 $D/kernels_rows.py pairs 4 2>&1 | grep '^{' | tee $OUT/kernels_rows.jsonl | tail -1
(cd /tmp/base && timeout 60 python3 $D/kernels_rows.py base 4 2>&1 | grep '^{' | tee -a $OUT/kernels_rows.jsonl | tail -1)
stamp end
