# 2026-11-28 (seventeenth session), one GPU: GPU tests of the final main (after c.sh: the <=16-row int4 bucket cut to
# the tile that won, names, kernel_config).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 200 python3 -m pytest -q -x tests/test_cuda.py -k "quantized" -p no:cacheprovider -s > $OUT/test_cuda_main_h200.log 2>&1; echo "rc $?"; tail -2 $OUT/test_cuda_main_h200.log
stamp end
