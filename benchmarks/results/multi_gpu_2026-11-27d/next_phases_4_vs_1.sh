# NOT YET RUN (no device time was left): the host phases of 4-GPU launches against a 1-GPU launch on one machine.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh  # the carried wheels (.whl), the environment
[ -f /root/b7/model/config.json ] || { stamp prepare; python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 512 > /root/prep.log 2>&1; echo "rc $?"; }
G='^timed steps|^  rank|^    host|^  the busiest'
run() { stamp "$1 GPUs, global batch 32, $2"; echo "== $1 GPUs, global batch 32, $2" >> $OUT/phases.txt
  timeout 75 python3 benchmarks/results/multi_gpu_2026-11-27d/launch_profile.py $1 8 $2 32 0 > /root/f.log 2>&1; echo "rc $?"; grep -E "$G" /root/f.log | tee -a $OUT/phases.txt; }
run 4 A; run 1 B; run 4 C
stamp end
