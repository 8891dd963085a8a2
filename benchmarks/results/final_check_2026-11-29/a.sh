# Thirtieth session: the whole tests/test_cuda.py on the shipped tree (620982d: int4's mma.sync tiles applied) on one
# H200. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 570 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py -p no:logging --show-capture=no --tb=short \
  -rs 2>&1 | grep -v DEBUG | tail -40 | tee $OUT/test_cuda_h200.log
stamp end
