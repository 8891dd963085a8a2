# 2026-11-29 (twenty-ninth session), one GPU, the session's last 250 s of device time: the int4 several-row kernel on
# mma.sync (ampere_rows.py, this kernel alone: c/buckets_h200.jsonl has the shipped launch and the Triton tiles at the
# same rows on the same kind of machine). Carry .whl.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp ampere
timeout 150 python3 benchmarks/results/small_rows_2026-11-29/ampere_rows.py alone 2>&1 | tee $OUT/ampere_h200.jsonl | cut -c1-400
stamp end
