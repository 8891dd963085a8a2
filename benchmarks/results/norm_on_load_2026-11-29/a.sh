# 2026-11-29 (twenty-eighth session), one GPU, the session's last device seconds: chain_norm.py, the RMSNorm moved
# from the last program of o and down into the next product's programs, against the shipped chain and plain products.
# Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp chain_norm
timeout ${A_LIMIT:-190} python3 benchmarks/results/norm_on_load_2026-11-29/chain_norm.py --output $OUT/chain_norm_h200.jsonl 2>&1 | grep -v "^{" | tail -14
stamp end
