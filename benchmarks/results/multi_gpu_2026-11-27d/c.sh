source .call21/common.sh
G='^timed steps|^  rank|^  the busiest'
stamp one 1-GPU run alone
CUDA_VISIBLE_DEVICES=0 timeout 150 python3 .call22/launch_profile.py 1 6 alone > /root/alone.log 2>&1; echo "rc $?"; grep -E "$G" /root/alone.log | tee $OUT/independent.txt
stamp four independent 1-GPU runs at once
for i in 0 1 2 3; do CUDA_VISIBLE_DEVICES=$i timeout 200 python3 .call22/launch_profile.py 1 6 gpu$i > /root/four$i.log 2>&1 & done; wait
for i in 0 1 2 3; do echo "== GPU $i, with three others"; grep -E "$G" /root/four$i.log; done | tee -a $OUT/independent.txt
stamp one 1-GPU run alone again
CUDA_VISIBLE_DEVICES=0 timeout 150 python3 .call22/launch_profile.py 1 6 alone2 > /root/alone2.log 2>&1; echo "rc $?"; grep -E "$G" /root/alone2.log | tee -a $OUT/independent.txt
stamp end
