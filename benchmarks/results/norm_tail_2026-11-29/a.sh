# 2026-11-29 (twenty-seventh session), one GPU, the session's last device minutes: chain.py, what the residual add +
# RMSNorm by the last program costs a batch-1 layer of int4 and int8 products, against the add and norm compiled
# separately and against none at all (the bound of moving the norm into the next product). Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp chain
timeout 200 python3 benchmarks/results/norm_tail_2026-11-29/chain.py --output $OUT/chain_h200.jsonl 2>&1 | grep -v "^{" | tail -12
stamp end
