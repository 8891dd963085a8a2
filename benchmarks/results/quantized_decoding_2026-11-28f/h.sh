# 2026-11-28 (nineteenth session), one GPU: the Gluon int4 prompt tile prepared last session (its error and time
# against the shipped launch), then the CUDA tests, which now also run int8's split tiles.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp gluon
timeout 240 python3 benchmarks/results/quantized_decoding_2026-11-28e/next_gluon.py 2>&1 | tail -30 | tee $OUT/gluon_h200.log
stamp tests
timeout 330 python3 -m pytest -q -x tests/test_cuda.py -k quantized 2>&1 | tail -15 | tee $OUT/test_cuda_int8split_h200.log
stamp end
