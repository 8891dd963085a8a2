"""Picks autotune's one-row list from the sweep: the two fastest configurations per (bits, shape); rewrites ROW_CONFIGS."""
import json, re, sys
records = [json.loads(line) for line in open(sys.argv[1])]
best = {}
for r in records:
    if r.get("kind") == "quantized" and r["rows"] == 1 and isinstance(r["config"], dict) and "TBps" in r:
        best.setdefault((r["bits"], r["shape"]), []).append((r["TBps"], json.dumps(r["config"], sort_keys=True)))
chosen = []
for key, runs in sorted(best.items()):
    runs.sort(reverse=True)
    print(key, [(round(t, 2), c) for t, c in runs[:4]])
    for _, config in runs[:2]:
        if config not in chosen:
            chosen.append(config)
configs = [json.loads(c) for c in chosen]
text = "ROW_CONFIGS = [\n" + "".join(f"    {c!r},\n" for c in configs) + "]\n"
print(text)
path = "quantized_decode_kernels.py"
source = open(path).read()
source = re.sub(r"ROW_CONFIGS = \[.*?for bit_cast in \(False, True\)\]\n", lambda m: text, source, flags=re.S)
open(path, "w").write(source)
