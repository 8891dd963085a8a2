source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export TRITON_CACHE_DIR=/tmp/tc
stamp "int4 planes weights first"
timeout 300 python3 .call23/p_sweep.py > $OUT/p.log 2>&1; echo rc $?
grep "^kern" $OUT/p.log; grep -v "^kern" $OUT/p.log | grep -iv warn | tail -5
stamp end
