# 2026-11-29 (twenty-sixth session), one GPU: after c.sh (autotune's picks 1.2-1.5x slower when streaming) the tiles
# are fixed per weight format (quantized_row_kernel.ROW_TILES). products.py again (with the two ways' outputs
# compared), then int4 and int8 batch 1 and first token, new against HEAD (f092f97, .head), alternating processes.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
ln -sfn $PWD/weights .head/weights
stamp products
timeout 120 python3 benchmarks/results/dp4a_row_kernel_2026-11-29/products.py --output $OUT/products_h200.jsonl 2>&1 | grep -v "^{" | tail -24
for weights in int4 int8; do
  for tree in new head; do
    stamp generate $weights $tree
    if [ $tree = new ]; then dir=.; else dir=.head; fi
    (cd $dir && timeout 100 python3 benchmarks/bench_generate.py --modes embedding --methods fast \
      --quantize $weights --batch_sizes '' --speed_only --output $OUT/generate_${weights}_${tree}_h200.jsonl > /dev/null 2>&1)
    grep -h '"batch1"' $OUT/generate_${weights}_${tree}_h200.jsonl | cut -c1-200
  done
done
stamp end
