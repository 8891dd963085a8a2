# 2026-11-28 (nineteenth session), one GPU: Gluon int4 prompt tiles pipelined by cp.async (second version: weights in shared memory or each wgmma waited for), the dequantized weights as wgmma's left
# operand in registers (next_gluon_pipelined.py) against the shipped autotuned launch and bf16 cuBLAS.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp gluon registers
timeout 400 python3 benchmarks/results/quantized_decoding_2026-11-28f/next_gluon_pipelined.py 2>&1 | tail -30 | tee $OUT/gluon_pipelined2_h200.log
stamp end
