# Prepared (twenty-ninth session), run the next (thirtieth; g/): mma_v2.patch puts ampere_rows.py's mma.sync tiles
# beside wgmma's in the autotuned several-row launch (buckets of 8, 16 and 32 rows; on sm_80-89 cards they take batched decoding's rows up
# to 32, which the Triton tiles serve today). On one H200: the patched tree's CUDA tests (every mma.sync and wgmma
# tile of batched decoding's buckets launched as given, the fast path's op at 2-200 rows, the quantized kernels' and
# the compiled int4 decoder's), then bench_generate int4 at batch 1 / 8 / 32, patched and unpatched alternating.
# Carry .whl. Then the patch was applied on main.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
rm -rf /tmp/patched && mkdir /tmp/patched && cp -r $(ls -A | grep -v '^\.whl$') /tmp/patched/
(cd /tmp/patched && { patch -p1 < benchmarks/results/small_rows_2026-11-29/mma_v2.patch \
  || git apply benchmarks/results/small_rows_2026-11-29/mma_v2.patch; }) || exit 1
stamp tests
(cd /tmp/patched && timeout 300 python3 -m pytest -x -q -p no:cacheprovider tests/test_cuda.py -k "several_row_kernel or (quantized_kernels_match and 4) or (decodes_quantized and 4)" --tb=short -p no:logging --show-capture=no 2>&1 | grep -v DEBUG | tail -30) | tee $OUT/test_cuda_mma_v2_h200.log
grep -q " passed" $OUT/test_cuda_mma_v2_h200.log && ! grep -q "failed\|rror" $OUT/test_cuda_mma_v2_h200.log || exit 1
for repeat in 1 2; do
  for tree in patched head; do
    [ $((SECONDS + 110)) -lt ${G_UNTIL:-590} ] || break 2
    stamp generate $tree $repeat
    root=.; [ $tree = patched ] && root=/tmp/patched
    timeout 110 python3 $root/benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 \
      --batch_sizes 8,32 --speed_only --output /tmp/g.jsonl > /dev/null 2>&1
    grep -h '"batch' /tmp/g.jsonl | sed "s/^{/{\"run\": \"$tree $repeat\", /" >> $OUT/generate_mma_v2_h200.jsonl
    rm -f /tmp/g.jsonl
    grep "\"$tree $repeat\"" $OUT/generate_mma_v2_h200.jsonl | cut -c1-200
  done
done
stamp end
