# 2026-11-28 (nineteenth session), one GPU: Gluon int4 prompt tiles pipelined by cp.async, the dequantized weights as wgmma's left
# operand in registers (next_gluon_pipelined.py) against the shipped autotuned launch and bf16 cuBLAS.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp gluon registers
timeout 400 python3 benchmarks/results/quantized_decoding_2026-11-28f/next_gluon_pipelined.py 2>&1 | tail -30 | tee $OUT/gluon_pipelined_h200.log
stamp end
