# 2026-11-28 (twenty-third session), one GPU: int8 prompt tiles outside ROWS_TILES at 96 rows (prompt_tiles.py).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp prompt tiles
timeout 400 python3 benchmarks/results/int8_prompt_2026-11-28/prompt_tiles.py --output $OUT/prompt_tiles_h200.jsonl > $OUT/prompt_tiles.log 2>&1; echo "rc $?"
grep -v "^\s*$" $OUT/prompt_tiles.log | grep -v '^{' | tail -3 | cut -c1-300
python3 - <<'PY'
import json, os
for line in open(os.path.join(os.environ["OUT"], "prompt_tiles_h200.jsonl")):
    r = json.loads(line)
    print(r["shape"], r["config"], round(r["us"], 1) if "us" in r else r.get("error", "")[:80], round(r.get("TBps", 0), 2), round(r.get("relative_error", 0), 5))
PY
stamp end
