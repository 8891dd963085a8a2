# 2026-11-28 (fifteenth session), one GPU: GPU tests of the final code (int4 one-row products on word pairs), printing
# each product's relative error; the same error test run over the float32 loop before (fb18d00's file, .call23/base) for comparison.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 300 python3 -m pytest -q -s tests/test_cuda.py -k "quantized or continuous or decode_attention" -p no:cacheprovider > $OUT/test_cuda.log 2>&1; echo "rc $?"; tail -3 $OUT/test_cuda.log
grep "^4 (" $OUT/test_cuda.log | sort -k6 -r | head -8
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks tests /tmp/base/ && cp .call23/base/*.py /tmp/base/
stamp "errors, float32 loop"
(cd /tmp/base && timeout 120 python3 -m pytest -q -s tests/test_cuda.py -k "quantized_kernels_match" -p no:cacheprovider > $OUT/test_cuda_base_errors.log 2>&1); echo "rc $?"
grep "^4 (" $OUT/test_cuda_base_errors.log | grep ", 1, " | head -12
grep "^4 (" $OUT/test_cuda.log | grep ", 1, " | head -12
stamp end
