# 2026-11-28 (fifteenth session), one GPU: int4's one-row products in bf16 pairs (quantized_decode_kernels.py) end to
# end against the previous kernels (fb18d00's file, carried as .call23/base), bf16 and int8 in the same call; GPU tests.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 200 python3 -m pytest -q -x tests/test_cuda.py -k "quantized" -p no:cacheprovider > $OUT/test_cuda.log 2>&1; echo "rc $?"; tail -3 $OUT/test_cuda.log
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks /tmp/base/ && cp .call23/base/*.py /tmp/base/
stamp "generate new"
timeout 200 python3 benchmarks/bench_generate.py --modes embedding --methods fast,generate --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_new.jsonl > $OUT/generate_new.log 2>&1; echo "rc $?"
timeout 150 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize none,int8 --batch_sizes 8,32 --speed_only --output $OUT/generate_new_bf16_int8.jsonl > $OUT/generate_new_bf16_int8.log 2>&1; echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_new.jsonl $OUT/generate_new_bf16_int8.jsonl | cut -c1-220
stamp "generate base"
(cd /tmp/base && timeout 120 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8 --speed_only --output $OUT/generate_base.jsonl > $OUT/generate_base.log 2>&1); echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_base.jsonl | cut -c1-220
stamp end
