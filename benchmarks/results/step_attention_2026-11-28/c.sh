# 2026-11-28 (twentieth session), one GPU: the step attention with 8 warps where a program reads a whole cache (one
# slice: large batches) against HEAD (b551078, .call23/base): decode step replays by rows (profile_decode.py rows,
# bf16, 256 slots read), then end to end int4 at batch 1, 8 and 32, new and HEAD.
source benchmarks/results/step_attention_2026-11-28/common.sh
stamp rows new
timeout 110 python3 benchmarks/profile_decode.py rows --output $OUT/rows_new_h200.jsonl 2>&1 | grep '"rows"' | cut -c1-160
stamp rows base
(cd /tmp/base && timeout 100 python3 benchmarks/profile_decode.py rows --output $OUT/rows_base_h200.jsonl 2>&1 | grep '"rows"' | cut -c1-160)
stamp new; generate new_int4 . int4 120
stamp base; generate base_int4 /tmp/base int4 110
stamp end
