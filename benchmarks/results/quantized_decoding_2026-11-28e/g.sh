# Prepared for the next session (not run in the eighteenth: no device time left): the Gluon int4 prompt tile
# (next_gluon.py: dequantizing a step while the tensor cores multiply the last) against the shipped autotuned launch
# at 32, 96 and 128 rows on the 7B shapes, with its error against dequantize-then-matmul.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp gluon
timeout 300 python3 benchmarks/results/quantized_decoding_2026-11-28e/next_gluon.py 2>&1 | tail -20 | tee $OUT/gluon_h200.log
stamp end
