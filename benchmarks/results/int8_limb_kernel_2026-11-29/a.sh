# 2026-11-29 (twenty-fifth session): limb_kernel.py's tile sweep against the shipped int8 launch and bf16 cuBLAS.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
D=benchmarks/results/int8_limb_kernel_2026-11-29
stamp sweep
timeout 540 python3 $D/limb_kernel.py --rows 96,32,256 --output $OUT/limb_kernel_h200.jsonl > $OUT/limb_kernel.log 2>&1
echo "rc $?"; grep -v '^{' $OUT/limb_kernel.log | grep -v "^\s*$" | tail -4 | cut -c1-300
python3 $D/summary.py $OUT/limb_kernel_h200.jsonl
stamp end
