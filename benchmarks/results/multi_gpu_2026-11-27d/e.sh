source .call21/common.sh
[ -f /root/b7/model/config.json ] || { stamp prepare; python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 768 > /root/prep.log 2>&1; echo "rc $?"; }
G='^timed steps|^  rank|^    host|^  the busiest'
for round in 1 2; do
  for gb in 32 8; do
    stamp "1 GPU, global batch $gb (micro-batch 8), round $round"; echo "== 1 GPU, global batch $gb, round $round" >> $OUT/phases.txt
    timeout 150 python3 .call22/launch_profile.py 1 10 gb$gb $gb 0 > /root/e.log 2>&1; echo "rc $?"; grep -E "$G" /root/e.log | tee -a $OUT/phases.txt
  done
done
tail -c 2000 /root/e.log > $OUT/e_tail.log
stamp end
