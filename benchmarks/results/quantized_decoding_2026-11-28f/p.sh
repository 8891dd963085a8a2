# Prepared for the next session (not run in the nineteenth: no device time left): the Gluon int8 prompt kernel
# (next_gluon_int8.py) against the shipped int8 launch at 96-256 rows, bf16 and fp16 inputs, with its error against
# dequantize-then-matmul.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp gluon int8
timeout 300 python3 benchmarks/results/quantized_decoding_2026-11-28f/next_gluon_int8.py 2>&1 | tail -20 | tee $OUT/gluon_int8_h200.log
stamp end
