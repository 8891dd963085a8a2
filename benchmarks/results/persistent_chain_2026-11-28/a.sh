# Prepared 2026-11-28 (twenty-third session), run 2026-11-29 through b.sh: chain.py, a grid barrier against a
# launch boundary (int4 and int8 chains of 32 dependent 4096 x 4096 one-row products). Carry .whl. The timeout guards
# against programs that could not all be resident (chain.py skips those by its register count).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp chain
timeout 300 python3 benchmarks/results/persistent_chain_2026-11-28/chain.py --output $OUT/chain_h200.jsonl > $OUT/chain.log 2>&1; echo "rc $?"
tail -3 $OUT/chain.log | cut -c1-300
cut -c1-220 $OUT/chain_h200.jsonl
stamp end
