# 2026-11-28 (twenty-third session), one GPU: Inductor's prologue-fused int8 matmuls for prompts (prologue_mm.py).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp prologue mm
TORCHINDUCTOR_CACHE_DIR=/tmp/inductor timeout 420 python3 benchmarks/results/int8_prompt_2026-11-28/prologue_mm.py --rows 96 --output $OUT/prologue_mm_h200.jsonl > $OUT/prologue_mm.log 2>&1; echo "rc $?"
grep -v "^\s*$" $OUT/prologue_mm.log | tail -4 | cut -c1-300
cut -c1-400 $OUT/prologue_mm_h200.jsonl
ls /tmp/inductor 2>/dev/null | head -3
stamp end
