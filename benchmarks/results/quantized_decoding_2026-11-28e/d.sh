# 2026-11-28 (eighteenth session), one GPU: autotune timing several rows by CUDA-graph replays (a split tile's two
# launches back to back): launches at 1-96 rows and the tiles chosen, end to end int4 against HEAD (3b92cff,
# .call23/base), GPU tests.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/quantized_decoding_2026-11-28e
K=benchmarks/results/quantized_decoding_2026-11-28d/kernels_by_rows.py
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks /tmp/base/ && cp .call23/base/*.py /tmp/base/
stamp kernels
timeout 100 python3 $K replayed 4 2>&1 | grep '^{' | tee $OUT/kernels_replayed_h200.jsonl | cut -c1-150
stamp "generate"
timeout 150 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_replayed_h200.jsonl > $OUT/generate_replayed.log 2>&1; echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_replayed_h200.jsonl | cut -c1-250
stamp "generate base"
(cd /tmp/base && timeout 80 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_base2_h200.jsonl > $OUT/generate_base2.log 2>&1); echo "rc $?"
grep -h '"batch1"\|"batched"' $OUT/generate_base2_h200.jsonl | cut -c1-250
stamp tests
timeout 200 python3 -m pytest -q -x tests/test_cuda.py -k "quantized" -p no:cacheprovider -s > $OUT/test_cuda_replayed_h200.log 2>&1; echo "rc $?"; tail -2 $OUT/test_cuda_replayed_h200.log
stamp end
