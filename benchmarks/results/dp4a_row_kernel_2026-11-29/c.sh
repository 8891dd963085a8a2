# 2026-11-29 (twenty-sixth session), one GPU: products.py (the four batch-1 products as the decoder calls them, dp4a
# against the Triton launch), after b.sh found int4 decoding slower with dp4a (400 against 442 tokens/s).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp products
timeout 300 python3 benchmarks/results/dp4a_row_kernel_2026-11-29/products.py --output $OUT/products_h200.jsonl 2>&1 | grep -v "^{" | tail -20
stamp end
