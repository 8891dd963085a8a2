# 2026-11-29 (twenty-seventh session), one GPU: the CUDA tests of the quantized kernels and the compiled quantized
# decoder with int4 routed to the dp4a kernels too (ROW_KERNEL_BITS = (4, 8)), then every candidate tile of those
# kernels forced in turn on int8's four products (tiles.py) while the call's time lasts. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 330 python3 -m pytest -q tests/test_cuda.py -k "dp4a or quantized or residual or compiled" 2>&1 \
  | grep -v "^\s*$" | tail -40 > $OUT/test_cuda_h200.log
tail -4 $OUT/test_cuda_h200.log
stamp tiles
timeout $((585 - SECONDS)) python3 benchmarks/results/row_tiles_2026-11-29/tiles.py --bits 8 \
  --output $OUT/tiles_int8_h200.jsonl 2>&1 | grep -v "^{" | tail -12
stamp end
