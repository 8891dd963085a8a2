source .call21/common.sh
stamp kernels
timeout 400 python3 .call21/sweep_int4.py > $OUT/kernels.log 2>&1; echo "rc $?"; grep -v -i warn $OUT/kernels.log | grep -v sweep | tail -60
grep sweep $OUT/kernels.log | sort -t' ' -k2,2 -k 13n | cut -c1-160 > $OUT/sweep.txt; cat $OUT/sweep.txt | tail -100
stamp end
