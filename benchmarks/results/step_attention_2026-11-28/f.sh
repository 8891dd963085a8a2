# Prepared for the next session (not run: no device time left): bf16 and int8 at batch 1, 8 and 32 with the final step
# attention launch against HEAD b551078 (d.sh measured int4 only; b.sh's bf16 and int8 runs were cut before batch 32).
source benchmarks/results/step_attention_2026-11-28/common.sh
stamp new; generate new_bf16 . none 80
stamp base; generate base_bf16 /tmp/base none 70
stamp new; generate new_int8 . int8 120
stamp base; generate base_int8 /tmp/base int8 100
stamp end
