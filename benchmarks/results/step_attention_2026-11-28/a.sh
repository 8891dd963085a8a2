# 2026-11-28 (twentieth session), one GPU: the decode step's attention in one launch (rotary, cache writes, the
# slices combined by the last program) against HEAD (b551078, .call23/base): the CUDA tests of the decoder, then end
# to end int4 and bf16, new and HEAD in turn.
source benchmarks/results/step_attention_2026-11-28/common.sh
stamp tests
timeout 200 python3 -m pytest -q -x tests/test_cuda.py -k "step_attention or compiled or continuous or pipeline or server" 2>&1 | grep -v "^\s*$" | tail -30 > $OUT/test_cuda_h200.log; tail -4 $OUT/test_cuda_h200.log
stamp new; generate new_int4 . int4 110
stamp base; generate base_int4 /tmp/base int4 90
stamp new; generate new_bf16 . none 75
stamp base; generate base_bf16 /tmp/base none 75
stamp end
