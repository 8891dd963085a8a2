source .call20/common.sh
which ncu nsys; ls /usr/local/cuda*/bin 2>/dev/null | grep -i "ncu\|nsys" | head; ls /opt/nvidia 2>/dev/null
NCU=$(which ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1 || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
echo "ncu: $NCU"
[ -n "$NCU" ] || exit 0
timeout 200 $NCU --nvtx --nvtx-include "measured/" --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section InstructionStats --csv python3 .call20/ncu_kernel.py > $OUT/ncu.csv 2> $OUT/ncu.err; echo "rc $?"
tail -5 $OUT/ncu.err; wc -l $OUT/ncu.csv; grep -iE "Duration|Memory Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|Issue Slots Busy|Stall|Executed Ipc" $OUT/ncu.csv | cut -c1-220 | head -60
