# Prepared 2026-11-29 (twenty-sixth session), run the same day (twenty-seventh session): int4 through the dp4a kernels with the
# scale loads' mask fixed. products.py with int4 routed there, then int4 batch 1 with quantized_row_kernel.ROW_KERNEL_BITS
# = (4, 8) (a patched copy of the tree, .int4) against the tree as committed (int4 on the Triton launch), alternating
# processes, twice. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
rm -rf /tmp/int4 && mkdir /tmp/int4 && cp -r *.py benchmarks /tmp/int4/ && ln -sfn $PWD/weights /tmp/int4/weights
sed -i 's/^ROW_KERNEL_BITS = (8,)$/ROW_KERNEL_BITS = (4, 8)/' /tmp/int4/quantized_row_kernel.py
grep -n "^ROW_KERNEL_BITS" /tmp/int4/quantized_row_kernel.py
stamp products
timeout 120 python3 benchmarks/results/dp4a_row_kernel_2026-11-29/products.py --routed 4,8 \
  --output $OUT/products_h200.jsonl 2>&1 | grep -v "^{" | tail -24
for repeat in 1 2; do
  for tree in routed committed; do
    stamp generate int4 $tree $repeat
    if [ $tree = routed ]; then dir=/tmp/int4; else dir=.; fi
    (cd $dir && timeout 100 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 \
      --batch_sizes '' --speed_only --output $OUT/generate_int4_${tree}_${repeat}_h200.jsonl > /dev/null 2>&1)
    grep -h '"batch1"' $OUT/generate_int4_${tree}_${repeat}_h200.jsonl | cut -c1-200
  done
done
stamp end
