# 2026-11-28 (twenty-third session), one GPU: last session's prepared launch cost; the coalesced-input int4 one-row
# prototype against the shipped launch on the 7B shapes; Nsight Compute on both (q|k|v): is L1 what bounds the shipped?
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/coalesced_inputs_2026-11-28
stamp launch cost
timeout 150 python3 benchmarks/results/launch_cost_2026-11-28/launch_cost.py --output $OUT/launch_cost_h200.jsonl 2>&1 | tail -3
stamp coalesced
timeout 240 python3 $D/next_coalesced.py > $OUT/coalesced_h200.jsonl 2> $OUT/coalesced.err; echo "rc $?"
tail -2 $OUT/coalesced.err; cut -c1-200 $OUT/coalesced_h200.jsonl
NCU=$(which ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1 || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
stamp ncu $NCU
timeout $((570 - SECONDS)) $NCU --nvtx --nvtx-include "regex:measured_.*/" --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats --section SchedulerStats --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables --page raw --csv python3 $D/ncu_coalesced.py > $OUT/ncu_raw.csv 2> $OUT/ncu.err; echo "rc $?"
tail -3 $OUT/ncu.err
python3 - <<'PY'
import csv, os
rows = list(csv.reader(open(os.path.join(os.environ["OUT"], "ncu_raw.csv"))))
start = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
head, data = rows[start], rows[start + 2:]
want = ("gpu__time_duration.sum", "dram__throughput.avg.pct_of_peak_sustained_elapsed", "l1tex__throughput.avg.pct_of_peak_sustained_active",
        "smsp__issue_active.avg.pct_of_peak_sustained_active", "sm__warps_active.avg.pct_of_peak_sustained_active",
        "launch__registers_per_thread", "launch__grid_size", "launch__block_size", "smsp__inst_executed.sum",
        "l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum", "l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum",
        "l1tex__data_pipe_lsu_wavefronts_mem_shared.sum", "l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum",
        "lts__t_sectors_srcunit_tex_op_read.sum", "dram__bytes_read.sum")
for r in data:
    print("==", r[head.index("Kernel Name")][:40], r[head.index("NVTX Range")] if "NVTX Range" in head else "")
    for name in want:
        if name in head: print("  ", name, r[head.index(name)])
    stalls = [(float(r[i].replace(",", "")), h) for i, h in enumerate(head) if "issue_stalled" in h and r[i] not in ("", "n/a") and r[i].replace(".", "").replace(",", "").isdigit()]
    for value, h in sorted(stalls, reverse=True)[:10]: print("   stall", round(value, 2), h)
PY
stamp end
