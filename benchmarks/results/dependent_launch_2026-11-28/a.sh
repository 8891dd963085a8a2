# 2026-11-28 (twenty-first session), one GPU: the decode step's kernels as programmatic dependent launches that ask L2
# for their weights first (decode_kernels.py). The CUDA tests of the kernels and the graphed decoder with them on, then
# profile_decode.py's `launches` (a step at 1, 8, 32 rows: neither, dependent, prefetch, both, replayed in turn) for
# int4, bf16 and int8. `.call23/base` holds HEAD 5979c61's decode_attention.py, decode_kernels.py,
# quantized_decode_kernels.py and profile_decode.py (for /tmp/base, used by later calls).
source benchmarks/results/step_attention_2026-11-28/common.sh
stamp tests
timeout 180 python3 -m pytest -q -x tests/test_cuda.py -k "decode_kernels or quantized or step_attention or compiled or continuous" 2>&1 | grep -v "^\s*$" | tail -30 > $OUT/test_cuda_h200.log; tail -4 $OUT/test_cuda_h200.log
for bits in int4 none int8; do
  [ $SECONDS -lt 430 ] || break
  stamp launches $bits
  timeout $((560 - SECONDS)) python3 benchmarks/profile_decode.py launches --quantize $bits --output $OUT/launches_${bits}_h200.jsonl 2>&1 | grep '"launches\|Error\|error' | cut -c1-400
done
stamp end
