# 2026-11-28 (seventeenth session), one GPU: int4 words holding 8 neighbouring inputs (evens low, odds high; no input
# reordering for whole tiles) against HEAD's plane layout (d11e266, .call23/base): launches at 1-96 rows for the new
# code (its ≤16-row plane tiles taking the step's input once and splitting it, _input_planes) and for a variant that
# gathers each plane's inputs from memory (.call23/gather); GPU tests; end to end, new and HEAD.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/quantized_decoding_2026-11-28d
for tree in base gather; do
  rm -rf /tmp/$tree && mkdir /tmp/$tree && cp -r *.py benchmarks /tmp/$tree/ && cp .call23/$tree/*.py /tmp/$tree/
done
stamp kernels
timeout 80 python3 $D/kernels_by_rows.py split 4 2>&1 | grep '^{' | tee $OUT/kernels.jsonl | cut -c1-120
for tree in gather base; do
  (cd /tmp/$tree && timeout 80 python3 $D/kernels_by_rows.py $tree 4 2>&1 | grep '^{' | tee -a $OUT/kernels.jsonl | cut -c1-120)
done
stamp tests
timeout 170 python3 -m pytest -q -x tests/test_cuda.py -k "quantized" -p no:cacheprovider -s > $OUT/test_cuda.log 2>&1; echo "rc $?"; tail -2 $OUT/test_cuda.log
stamp "generate new"
timeout 100 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_new.jsonl > $OUT/generate_new.log 2>&1; echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_new.jsonl | cut -c1-250
stamp "generate base"
(cd /tmp/base && timeout 90 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_base.jsonl > $OUT/generate_base.log 2>&1); echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_base.jsonl | cut -c1-250
stamp end
