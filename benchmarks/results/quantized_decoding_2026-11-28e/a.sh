# 2026-11-28 (eighteenth session), one GPU: programmatic dependent launch between one-row int4 products (last session's
# next_pdl.py), then the int4 tile sweep at 96 rows (a prompt) with 4 and 8 warps (sweep_tiles.py).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/quantized_decoding_2026-11-28e
stamp pdl
timeout 150 python3 benchmarks/results/quantized_decoding_2026-11-28d/next_pdl.py 2>&1 | grep '^{' | tee $OUT/pdl_h200.jsonl
stamp compile
timeout 200 python3 $D/sweep_tiles.py compile tiles 15 2>&1 | tail -3
stamp time96
timeout 260 python3 $D/sweep_tiles.py time tiles 96 2>&1 | grep '^{' > $OUT/sweep_96_h200.jsonl
grep -v WEIGHTS $OUT/sweep_96_h200.jsonl
python3 - <<'PY'
import json, os
rows = [json.loads(l) for l in open(os.environ["OUT"] + "/sweep_96_h200.jsonl")]
for shape in ("q|k|v", "o", "gate|up", "down"):
    best = sorted((r for r in rows if r["shape"] == shape and "us" in r and isinstance(r["config"], dict)), key=lambda r: r["us"])[:4]
    for r in best: print(shape, r["us"], r["TBps"], r["relative_error"], r["config"])
PY
stamp end
