# Prepared 2026-11-28 (twenty-third session), run 2026-11-29 (records in a/ here and in ../norm_epilogue_2026-11-28/a/): both of this session's prepared measurements in one call
# (one machine start): chain.py (a grid barrier against a launch boundary), then ../norm_epilogue_2026-11-28/'s
# norm_epilogue.py (the add + RMSNorm in a product's last program) and its check on the GPU. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp chain
timeout 240 python3 benchmarks/results/persistent_chain_2026-11-28/chain.py --output $OUT/chain_h200.jsonl > $OUT/chain.log 2>&1; echo "rc $?"
tail -2 $OUT/chain.log | cut -c1-300
cut -c1-220 $OUT/chain_h200.jsonl
stamp norm epilogue
timeout 240 python3 benchmarks/results/norm_epilogue_2026-11-28/norm_epilogue.py --output $OUT/norm_epilogue_h200.jsonl > $OUT/norm_epilogue.log 2>&1; echo "rc $?"
tail -2 $OUT/norm_epilogue.log | cut -c1-300
cut -c1-260 $OUT/norm_epilogue_h200.jsonl
timeout $((590 - SECONDS)) python3 benchmarks/results/norm_epilogue_2026-11-28/norm_epilogue.py check
stamp end
