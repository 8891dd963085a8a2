# Prepared in the twenty-first session (2026-11-28; no device time left to run it): one-row quantized products split
# along their inputs. The CUDA tests of the kernels and the decoder, then row_splits.py (every one-row configuration
# on the 7B shapes, split and not), then end to end int4 and int8, the split code against the code before it
# (.call23/base: quantized_decode_kernels.py, decode_kernels.py and decode_attention.py of commit 139f7bb, and its
# benchmarks/profile_decode.py as profile_decode.py.bench).
source benchmarks/results/step_attention_2026-11-28/common.sh
stamp tests
timeout 150 python3 -m pytest -q -x tests/test_cuda.py -k "quantized or step_attention or compiled" 2>&1 | grep -v "^\s*$" | tail -30 > $OUT/test_cuda_h200.log; tail -4 $OUT/test_cuda_h200.log
stamp row splits
timeout 170 python3 benchmarks/results/row_splits_2026-11-28/row_splits.py --output $OUT/row_splits_h200.jsonl | cut -c1-200
stamp new; generate new_int4 . int4 110
stamp base; generate base_int4 /tmp/base int4 90
[ $SECONDS -lt 440 ] && { stamp new; generate new_int8 . int8 120; }
stamp end
