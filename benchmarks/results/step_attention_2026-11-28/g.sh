# Prepared for the next session (not run: no device time left): where a batch-1 step goes now (profile_decode.py step,
# int4 and int8, 512 cache slots): the products against everything else, after the step attention launch removed the
# rotary/cache-write and slice-combining kernels (0.48 ms outside the products in the sixteenth session's profile).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
for bits in int4 int8; do
  stamp step $bits
  timeout 150 python3 benchmarks/profile_decode.py step --quantize $bits --output $OUT/step_${bits}_h200.jsonl 2>&1 | grep '"step\|"kernel"' | cut -c1-170
done
stamp end
