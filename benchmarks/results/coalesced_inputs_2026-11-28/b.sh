# 2026-11-28 (twenty-third session), one GPU: wide_rows.py (one-row int4 tiles outside ROW_CONFIGS). Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp wide rows
timeout 400 python3 benchmarks/results/coalesced_inputs_2026-11-28/wide_rows.py --output $OUT/wide_rows_h200.jsonl > $OUT/wide_rows.log 2>&1; echo "rc $?"
python3 - <<'PY'
import json, os
for line in open(os.path.join(os.environ["OUT"], "wide_rows_h200.jsonl")):
    r = json.loads(line)
    c = r["config"] if isinstance(r["config"], str) else "%dx%dx%d" % (r["config"]["BLOCK_N"], r["config"]["BLOCK_K"], r["config"]["num_warps"])
    print(r["shape"], r.get("repeat"), c, round(r["us"], 2) if "us" in r else r.get("error"), round(r.get("TBps", 0), 3))
PY
stamp end
