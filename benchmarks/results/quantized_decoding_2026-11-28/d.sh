source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 230 python3 -m pytest -q -x tests/test_cuda.py -k "quantized or decode_attention or equals_generate or continuous" -p no:cacheprovider > $OUT/test_cuda.log 2>&1; echo "rc $?"; tail -3 $OUT/test_cuda.log
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks /tmp/base/ && cp .call23/base/*.py /tmp/base/
stamp "generate new"
timeout 170 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int8,none,int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_new.jsonl > $OUT/generate_new.log 2>&1; echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_new.jsonl | cut -c1-200
stamp "generate base"
(cd /tmp/base && timeout 120 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int8,none --batch_sizes 8,32 --speed_only --output $OUT/generate_base.jsonl > $OUT/generate_base.log 2>&1); echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_base.jsonl | cut -c1-200
stamp end
