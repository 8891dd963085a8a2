# 2026-11-28 (nineteenth session), one GPU: int4 prompts' q|k|v and gate|up through the Gluon kernel
# (quantized_prompt_kernel.py) against HEAD (6190219, .call23/base): launches at 65-512 rows, the CUDA tests, then end
# to end (new, HEAD, bf16).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
rm -rf /tmp/base && mkdir /tmp/base && cp -r *.py benchmarks /tmp/base/ && cp .call23/base/*.py /tmp/base/ && rm /tmp/base/quantized_prompt_kernel.py
P=benchmarks/results/quantized_decoding_2026-11-28f/prompt_kernels.py
stamp kernels
timeout 60 python3 $P new 2>&1 | grep '^{' > $OUT/prompt_kernels_new_h200.jsonl; cut -c1-120 $OUT/prompt_kernels_new_h200.jsonl
(cd /tmp/base && timeout 60 python3 $P base 2>&1 | grep '^{' > $OUT/prompt_kernels_base_h200.jsonl); cut -c1-120 $OUT/prompt_kernels_base_h200.jsonl
stamp tests
timeout 240 python3 -m pytest -q -x tests/test_cuda.py -k "quantized or prompt" -s 2>&1 | grep -v "^\s*$" | tail -40 > $OUT/test_cuda_prompt_h200.log; tail -4 $OUT/test_cuda_prompt_h200.log
generate() {  # generate NAME DIRECTORY QUANTIZE TIMEOUT
  (cd $2 && timeout $4 python3 benchmarks/bench_generate.py --modes embedding --methods fast --quantize $3 --batch_sizes 8,32 --speed_only --output $OUT/generate_$1_h200.jsonl > /dev/null 2>&1); echo "rc $?"
  grep -h '"batch1"\|"batched"' $OUT/generate_$1_h200.jsonl | cut -c1-200
}
stamp new; generate gluon1 . int4 110
stamp base; generate base_int4 /tmp/base int4 90
stamp bf16; generate bf16_2 . none 70
stamp end
