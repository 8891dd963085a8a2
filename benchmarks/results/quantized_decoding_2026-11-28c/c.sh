# 2026-11-28 (sixteenth session), one GPU: the int4 whole tiles in 16-bit pairs with their input reordered once
# (_pair_order_kernel) against HEAD's kernels (ecb465a, .call23/base): several-row launches, GPU tests, end to end with
# bf16 and int8 beside; the prompt tiles by pipeline depth.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/quantized_decoding_2026-11-28c
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks /tmp/base/ && cp .call23/base/*.py /tmp/base/
stamp kernels
timeout 70 python3 $D/kernels_rows.py pairs 4 2>&1 | grep '^{' | tee $OUT/kernels_rows.jsonl | grep '"rows": 96'
(cd /tmp/base && timeout 60 python3 $D/kernels_rows.py base 4 2>&1 | grep '^{' | tee -a $OUT/kernels_rows.jsonl | grep '"rows": 96')
stamp tests
timeout 200 python3 -m pytest -q -x tests/test_cuda.py -k "quantized" -p no:cacheprovider -s > $OUT/test_cuda.log 2>&1; echo "rc $?"; tail -2 $OUT/test_cuda.log
stamp "generate new"
timeout 110 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_new.jsonl > $OUT/generate_new.log 2>&1; echo "rc $?"
timeout 120 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none,int8 --batch_sizes 8,32 --speed_only --output $OUT/generate_new_bf16_int8.jsonl > $OUT/generate_new_bf16_int8.log 2>&1; echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_new.jsonl $OUT/generate_new_bf16_int8.jsonl | cut -c1-250
stamp "generate base"
(cd /tmp/base && timeout 90 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_base.jsonl > $OUT/generate_base.log 2>&1); echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_base.jsonl | cut -c1-250
stamp stages
timeout 60 python3 $D/sweep.py stages 2>&1 | grep '^{' > $OUT/sweep_stages.jsonl; echo "rc $?"
stamp end
