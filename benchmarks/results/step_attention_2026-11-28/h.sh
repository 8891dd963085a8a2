# 2026-11-28 (twenty-first session): what the prepared g.sh and f.sh would not both fit in one call: the batch-1 int4
# step's kernels (g.sh's int4 half), then f.sh (bf16 and int8 at batch 1, 8, 32, the step attention launch against
# b551078's code in .call23/base).
source benchmarks/results/step_attention_2026-11-28/common.sh
stamp step int4
timeout 150 python3 benchmarks/profile_decode.py step --quantize int4 --output $OUT/step_int4_h200.jsonl 2>&1 | grep '"step\|"kernel"' | cut -c1-170
stamp new; generate new_bf16 . none 80
stamp base; generate base_bf16 /tmp/base none 70
stamp new; generate new_int8 . int8 110
stamp base; generate base_int8 /tmp/base int8 95
stamp end
