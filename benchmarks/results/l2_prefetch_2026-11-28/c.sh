# 2026-11-28 (twenty-third session), one GPU: side_prefetch.py for int8 (its one-row products stream at about 3.45 TB/s
# past a 3.4 us launch cost: nearer the memory than int4's), and int4 with small prefetches. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
for spec in "8 4,8,16,32 8,16,66" "4 2,4 4,8"; do
  set -- $spec
  stamp bits $1 budgets $2 programs $3
  timeout 200 python3 benchmarks/results/l2_prefetch_2026-11-28/side_prefetch.py --bits $1 --budgets_mb $2 --programs $3 \
    --output $OUT/side_prefetch_int$1_h200.jsonl > $OUT/side_prefetch_int$1.log 2>&1; echo "rc $?"
  tail -1 $OUT/side_prefetch_int$1.log | cut -c1-200
done
python3 - <<'PY'
import glob, json, os
for path in sorted(glob.glob(os.path.join(os.environ["OUT"], "side_prefetch_int*_h200.jsonl"))):
    for line in open(path):
        r = json.loads(line)
        if r["measured"] == "one product":
            print(r["bits"], r["product"], round(r["hot_us"], 2), round(r["cold_us"], 2))
        else:
            print(r["bits"], r["gaps"], r["repeat"], r["budget"] >> 20, r["programs"], r["kind"], round(r["ms"], 3), round(r["TBps"], 3))
PY
stamp end
