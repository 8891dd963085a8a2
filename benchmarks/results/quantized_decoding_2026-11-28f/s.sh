# Prepared for the next session: the three prepared measurements in one call (one machine start): the Gluon int8
# prompt kernel (p.sh), the int4 prompt kernel's sweep (q.sh), batch-1 int4 products on the tensor cores (r.sh).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
B=benchmarks/results/quantized_decoding_2026-11-28f
stamp gluon int8
timeout 200 python3 $B/next_gluon_int8.py 2>&1 | tail -12 | tee $OUT/gluon_int8_h200.log
stamp sweep
timeout 200 python3 $B/prompt_sweep.py 2>&1 | tail -8 | tee $OUT/prompt_sweep_h200.log
stamp gemv
timeout 150 python3 $B/next_gluon_gemv.py 2>&1 | tail -6 | tee $OUT/gluon_gemv_h200.log
stamp end
