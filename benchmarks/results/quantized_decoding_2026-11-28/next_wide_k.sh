# Run on 2026-11-28 (thirteenth session) inside ../host_syncs_2026-11-28/b_one_gpu.sh: one-row kernels with wide
# steps (next_wide_k.py).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp kernels
timeout 400 python3 benchmarks/results/quantized_decoding_2026-11-28/next_wide_k.py > $OUT/wide_k.log 2>&1; echo "rc $?"
grep -i error $OUT/wide_k.log | head -5
python3 - <<'PY'
import json, os
records = [json.loads(line) for line in open(os.path.join(os.environ["OUT"], "kernels_one_row_wide_k.jsonl"))]
for key in sorted({(r["bits"], r["shape"], r["gated"]) for r in records}):
    ranked = sorted((r for r in records if (r["bits"], r["shape"], r["gated"]) == key), key=lambda r: -r["TBps"])
    print(key, [(r["config"] if isinstance(r["config"], str) else (r["config"]["BLOCK_N"], r["config"]["BLOCK_K"],
                 r["config"]["num_warps"], r["config"]["BIT_CAST"]), round(r["TBps"], 3)) for r in ranked[:4]])
PY
stamp end
