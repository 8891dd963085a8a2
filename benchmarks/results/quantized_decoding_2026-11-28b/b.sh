# 2026-11-28 (fifteenth session), one GPU: Nsight Compute on the shipped one-row q|k|v launches and the input-major
# prototype's fastest (ncu_kernels.py): what bounds them (stall reasons, occupancy, bytes in flight).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
NCU=$(which ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1 || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
echo "ncu: $NCU"
stamp ncu
timeout 300 $NCU --nvtx --nvtx-include "regex:measured_.*/" --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats --section SchedulerStats --section MemoryWorkloadAnalysis --section InstructionStats --page raw --csv python3 benchmarks/results/quantized_decoding_2026-11-28b/ncu_kernels.py > $OUT/ncu_raw.csv 2> $OUT/ncu.err; echo "rc $?"
tail -3 $OUT/ncu.err; wc -l $OUT/ncu_raw.csv
python3 - <<'PY'
import csv, os
rows = list(csv.reader(open(os.path.join(os.environ["OUT"], "ncu_raw.csv"))))
start = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
head, units, data = rows[start], rows[start + 1], rows[start + 2:]
want = ("gpu__time_duration.sum", "dram__throughput.avg.pct_of_peak_sustained_elapsed", "sm__warps_active.avg.pct_of_peak_sustained_active",
        "launch__registers_per_thread", "launch__grid_size", "launch__block_size", "smsp__issue_active.avg.pct_of_peak_sustained_active",
        "l1tex__throughput.avg.pct_of_peak_sustained_active", "launch__occupancy_limit_registers", "sm__maximum_warps_per_active_cycle_pct",
        "smsp__inst_executed.sum")
for r in data:
    print("==", r[head.index("Kernel Name")][:40], [r[head.index("NVTX Range")] if "NVTX Range" in head else ""])
    for name in want:
        if name in head: print("  ", name, r[head.index(name)])
    stalls = [(float(r[i].replace(",", "")), h) for i, h in enumerate(head) if "issue_stalled" in h and r[i] not in ("", "n/a") and r[i].replace(".", "").replace(",", "").isdigit()]
    for value, h in sorted(stalls, reverse=True)[:14]: print("   stall", round(value, 1), h)
PY
stamp end
