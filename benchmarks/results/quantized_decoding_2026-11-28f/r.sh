# Prepared for the next session (not run in the nineteenth: no device time left): batch-1 int4 products on the
# tensor cores (next_gluon_gemv.py) against the shipped one-row launch, TB/s and error, the four 7B shapes.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp gluon gemv
timeout 300 python3 benchmarks/results/quantized_decoding_2026-11-28f/next_gluon_gemv.py 2>&1 | tail -8 | tee $OUT/gluon_gemv_h200.log
stamp end
