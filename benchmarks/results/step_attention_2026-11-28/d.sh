# 2026-11-28 (twentieth session), one GPU: the step attention with 16 slots x 2 warps where a program reads a whole
# cache (one slice: large batches; c.sh's 8 warps left batch 32 2% behind HEAD) against HEAD (b551078): the CUDA test
# of the launch (1, 8 and 64 rows), then end to end int4 at batch 1, 8 and 32, new and HEAD.
source benchmarks/results/step_attention_2026-11-28/common.sh
stamp test
timeout 40 python3 -m pytest -q -x tests/test_cuda.py -k "step_attention" 2>&1 | grep -v "^\s*$" | tail -3
stamp new; generate new_int4 . int4 100
stamp base; generate base_int4 /tmp/base int4 95
stamp end
