# 2026-11-28 (twenty-third session), one GPU: side_prefetch.py again (a.sh's run stopped at a record key), then the
# whole CUDA test file with HEAD's code. Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp side prefetch
timeout 200 python3 benchmarks/results/l2_prefetch_2026-11-28/side_prefetch.py --output $OUT/side_prefetch_h200.jsonl > $OUT/side_prefetch.log 2>&1; echo "rc $?"
tail -2 $OUT/side_prefetch.log | cut -c1-300
python3 - <<'PY'
import json, os
for line in open(os.path.join(os.environ["OUT"], "side_prefetch_h200.jsonl")):
    r = json.loads(line)
    if r["measured"] == "32 layers":
        print(r["gaps"], r["repeat"], r["budget"] >> 20, r["programs"], r["kind"], round(r["ms"], 3), round(r["TBps"], 3))
PY
stamp tests
timeout $((590 - SECONDS)) python3 -m pytest -q tests/test_cuda.py 2>&1 | grep -v "^\s*$" | tail -20 > $OUT/test_cuda_h200.log
tail -3 $OUT/test_cuda_h200.log
stamp end
