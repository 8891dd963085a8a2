# 2026-11-28 (sixteenth session), one GPU: the final code (int4 prompt tiles with a two-stage variant): GPU tests, the
# several-row launches, end to end; then Nsight Compute on the 96-row q|k|v and gate|up launches (what bounds them).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/quantized_decoding_2026-11-28c
stamp kernels
timeout 70 python3 $D/kernels_rows.py final 4 2>&1 | grep '^{' | tee $OUT/kernels_rows.jsonl | grep -v '"rows": 8'
stamp tests
timeout 190 python3 -m pytest -q -x tests/test_cuda.py -k "quantized" -p no:cacheprovider -s > $OUT/test_cuda.log 2>&1; echo "rc $?"; tail -2 $OUT/test_cuda.log
stamp generate
timeout 100 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize int4 --batch_sizes 8,32 --speed_only --output $OUT/generate.jsonl > $OUT/generate.log 2>&1; echo "rc $?"
grep -h '"batch1"\|"batched"\|logit' $OUT/generate.jsonl | cut -c1-250
stamp ncu
NCU=$(which ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1 || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
timeout 120 $NCU --nvtx --nvtx-include "regex:measured_.*/" --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --page raw --csv python3 $D/ncu_prompt.py > $OUT/ncu_raw.csv 2> $OUT/ncu.err; echo "rc $?"
python3 - <<'PY'
import csv, os
rows = list(csv.reader(open(os.path.join(os.environ["OUT"], "ncu_raw.csv"))))
start = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
head, data = rows[start], rows[start + 2:]
want = ("gpu__time_duration.sum", "dram__throughput.avg.pct_of_peak_sustained_elapsed", "sm__throughput.avg.pct_of_peak_sustained_elapsed",
        "smsp__issue_active.avg.pct_of_peak_sustained_active", "sm__warps_active.avg.pct_of_peak_sustained_active",
        "launch__registers_per_thread", "launch__grid_size", "launch__shared_mem_per_block_dynamic", "l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum",
        "sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active", "smsp__inst_executed.sum")
for r in data:
    print("==", r[head.index("Kernel Name")][:40], r[head.index("NVTX Range")] if "NVTX Range" in head else "")
    for name in want:
        if name in head: print("  ", name, r[head.index(name)])
    stalls = [(float(r[i].replace(",", "")), h) for i, h in enumerate(head) if "issue_stalled" in h and "pct" not in h and r[i] not in ("", "n/a") and r[i].replace(".", "").replace(",", "").isdigit()]
    for value, h in sorted(stalls, reverse=True)[:10]: print("   stall", round(value, 2), h)
PY
stamp end
