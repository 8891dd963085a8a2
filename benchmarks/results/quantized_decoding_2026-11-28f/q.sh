# Prepared for the next session (not run in the nineteenth: no device time left): the Gluon int4 prompt kernel's
# tile constants swept (prompt_sweep.py).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp sweep
timeout 300 python3 benchmarks/results/quantized_decoding_2026-11-28f/prompt_sweep.py 2>&1 | tail -12 | tee $OUT/prompt_sweep_h200.log
stamp end
