# int4 several-row kernels, the whole tile dequantized (this commit) against HEAD's plane-at-a-time; end to end too.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp sweep
timeout 240 python3 .call23/q_sweep.py > $OUT/sweep.log 2>&1; echo "rc $?"; grep -v -i warn $OUT/sweep.log | grep -v "^sweep" | tail -5
grep "^sweep" $OUT/sweep.log | sort -k2,2 -k4,4n -k5,5 -t' ' | awk '{print}' | cut -c1-170 > $OUT/sweep.txt
python3 - <<'PY'
import json, os, collections
best = collections.defaultdict(list)
for l in open(os.environ["OUT"] + "/sweep_several_rows.jsonl"):
    d = json.loads(l)
    if "TBps" in d: best[(d["shape"], d["rows"])].append(d)
for key, rows in best.items():
    rows.sort(key=lambda d: -d["TBps"])
    old = [d for d in rows if d["code"] == "old"][0]; cur = [d for d in rows if d["code"] == "new"]
    print(key, "old", round(old["TBps"], 3), "new default", round([d for d in cur if d is not None][0]["TBps"], 3) if cur else None,
          "| best:", [(round(d["TBps"], 3), {k: v for k, v in d["config"].items()}) for d in rows[:3]])
PY
stamp "generate new"
timeout 170 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4,none --batch_sizes 8,32 --speed_only --output $OUT/generate.jsonl > $OUT/generate.log 2>&1; echo "rc $?"
cp quantized_decode_kernels.py /tmp/new.py; cp .call23/old/quantized_decode_kernels.py quantized_decode_kernels.py
stamp "generate HEAD"
timeout 120 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate_head.jsonl >> $OUT/generate.log 2>&1; echo "rc $?"
cp /tmp/new.py quantized_decode_kernels.py
grep -hE '"batch1"|"batched"' $OUT/generate.jsonl $OUT/generate_head.jsonl | cut -c1-260
stamp end
