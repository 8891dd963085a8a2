# Prepared 2026-11-29 (twenty-fourth session), not yet run: int8 prompts (and batched steps) on the int8 tensor cores
# with the input cut into exact int8 limbs (limbs.py), against the shipped int8 launch and bf16 cuBLAS. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/int8_limbs_2026-11-29
stamp limbs
timeout 480 python3 $D/limbs.py --output $OUT/limbs_h200.jsonl > $OUT/limbs.log 2>&1; echo "rc $?"
grep -v '^{' $OUT/limbs.log | grep -v "^\s*$" | tail -5 | cut -c1-300
python3 - <<'PY'
import json, os
for line in open(os.path.join(os.environ["OUT"], "limbs_h200.jsonl")):
    r = json.loads(line)
    print(r["shape"], r["rows"], r["way"], round(r["us"], 1) if "us" in r else r["error"][:100],
          r.get("relative_error") and f'{r["relative_error"]:.2e}')
PY
stamp end
