source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export TRITON_CACHE_DIR=/tmp/tc
stamp "sweep rows 1 int4,int8"
timeout 250 python3 .call23/swap_sweep.py 1 4,8 > $OUT/s_1.log 2>&1; echo rc $?
stamp "sweep rows 96 int4,int8"
timeout 200 python3 .call23/swap_sweep.py 96 4,8 > $OUT/s_96.log 2>&1; echo rc $?
stamp "sweep rows 8,32 int4"
timeout 100 python3 .call23/swap_sweep.py 8,32 4 > $OUT/s_8.log 2>&1; echo rc $?
python3 - <<'PY'
import json, os, glob, collections
groups = collections.defaultdict(list)
for path in glob.glob(os.environ["OUT"] + "/swap_sweep_*.jsonl"):
    for line in open(path):
        d = json.loads(line)
        if "TBps" in d: groups[(d["bits"], d["shape"], d["rows"])].append(d)
for key in sorted(groups):
    rows = groups[key]; base = [d for d in rows if d["code"] == "shipped"]
    best = sorted([d for d in rows if d["code"] == "swapped"], key=lambda d: -d["TBps"])[:2]
    print(key, "shipped", round(base[0]["TBps"], 3) if base else None, "| swapped best",
          [(round(d["TBps"], 3), d["config"], f'{d["relative_error"]:.1e}') for d in best])
PY
stamp end
