# 2026-11-28 (nineteenth session), one GPU: Gluon int4 prompt tiles with 4 or 8 warps, 64- or 128-output tiles, steps
# of one or two groups (next_gluon_warps.py) against the shipped autotuned launch and bf16 cuBLAS.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp gluon warps
timeout 500 python3 benchmarks/results/quantized_decoding_2026-11-28f/next_gluon_warps.py 2>&1 | tail -30 | tee $OUT/gluon_warps_h200.log
stamp end
