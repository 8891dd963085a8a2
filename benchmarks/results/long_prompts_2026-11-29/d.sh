source benchmarks/results/quantized_decoding_2026-11-27c/common.sh; timeout 380 python3 -m pytest -q -x tests/test_cuda.py 2>&1 | grep -v "^\s*$" | tail -8 | tee $OUT/test_cuda_all_h200.log
