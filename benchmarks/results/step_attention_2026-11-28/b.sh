# 2026-11-28 (twentieth session), one GPU: the step attention with the new token attended first (lane 0, loaded with
# the query: a.sh's version attended it after the loop, and batch 32 lost 4%) against HEAD (b551078, .call23/base):
# the launch's block sizes swept, the CUDA tests, then end to end int4, bf16 and int8, new and HEAD in turn.
source benchmarks/results/step_attention_2026-11-28/common.sh
B=benchmarks/results/step_attention_2026-11-28
stamp sweep
timeout 80 python3 $B/attention_sweep.py 2>&1 | grep '^{' > $OUT/attention_sweep_h200.jsonl
python3 - <<'PY'
import json, os, collections
rows = [json.loads(line) for line in open(os.environ["OUT"] + "/attention_sweep_h200.jsonl")]
table = collections.defaultdict(dict)
for r in rows:
    table[(r["rows"], r["cache_length"], r["filled"])][f'{r["block_slots"]}x{r["warps"]}'] = round(r["ours_us"], 1)
    table[(r["rows"], r["cache_length"], r["filled"])]["sdpa"] = round(r["sdpa_us"], 1)
for key, value in table.items():
    print(key, value)
PY
stamp tests
timeout 90 python3 -m pytest -q -x tests/test_cuda.py -k "step_attention or equals_generate or quantized_weights" 2>&1 | grep -v "^\s*$" | tail -5; 
stamp new; generate new_int4 . int4 85
stamp base; generate base_int4 /tmp/base int4 75
stamp new; generate new_bf16 . none 50
stamp base; generate base_bf16 /tmp/base none 50
stamp new; generate new_int8 . int8 90
stamp base; generate base_int8 /tmp/base int8 60
stamp end
