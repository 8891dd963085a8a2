# 2026-11-29 (twenty-eighth session), one GPU: loop.py, a batch-1 token's time in generate against the decode step
# alone and its CUDA graph alone, bf16 / int8 / int4 (HEAD 90848d3). Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp loop
timeout 500 python3 benchmarks/results/token_loop_2026-11-29/loop.py --output $OUT/loop_h200.jsonl 2>&1 | grep -v "^{" | tail -15
cat $OUT/loop_h200.jsonl
stamp end
