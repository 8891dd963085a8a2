# 2026-11-29 (twenty-ninth session), one GPU: after the launcher's partial-sum buffer was made once for both tile
# kinds (no change to what runs), the int4 CUDA tests through it again. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 320 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py -k "prompt_kernel or (quantized_kernels_match and 4) or (decodes_quantized and 4)" --tb=short -p no:logging --show-capture=no 2>&1 | grep -v DEBUG | tail -30 | tee $OUT/test_cuda_h200.log
stamp end
