# Prepared 2026-11-28 (twenty-third session), run 2026-11-29 through ../persistent_chain_2026-11-28/b.sh:
# norm_epilogue.py, the residual add and RMSNorm done by a one-row product's last program against their own compiled kernel (int4, int8; o and down shapes),
# then the check on the GPU (hidden must equal the compiled add's exactly there). Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp norm epilogue
timeout 300 python3 benchmarks/results/norm_epilogue_2026-11-28/norm_epilogue.py --output $OUT/norm_epilogue_h200.jsonl > $OUT/norm_epilogue.log 2>&1; echo "rc $?"
tail -3 $OUT/norm_epilogue.log | cut -c1-300
cut -c1-260 $OUT/norm_epilogue_h200.jsonl
timeout 120 python3 benchmarks/results/norm_epilogue_2026-11-28/norm_epilogue.py check
stamp end
