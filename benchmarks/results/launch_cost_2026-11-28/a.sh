# Prepared 2026-11-28 (twenty-second session), not yet run: launch_cost.py on the final code. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp launch cost
timeout 200 python3 benchmarks/results/launch_cost_2026-11-28/launch_cost.py --output $OUT/launch_cost_h200.jsonl
stamp end
