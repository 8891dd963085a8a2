# 2026-11-28 (nineteenth session), one GPU: the CUDA test of the Gluon prompt kernel again, after n.sh found fp16
# inputs over bf16 scales wrong (the scales' bits were read as fp16; now converted once loaded).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp tests
timeout 200 python3 -m pytest -q -x tests/test_cuda.py -k "prompt" -s 2>&1 | grep -v "^\s*$" | tail -40 > $OUT/test_cuda_prompt_h200.log; tail -34 $OUT/test_cuda_prompt_h200.log | cut -c1-100
stamp end
