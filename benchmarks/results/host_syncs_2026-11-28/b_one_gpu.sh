# One GPU: (1) the GPU's idle gaps by what opened them, graphed LoRA at global batch 32, with accelerate's waiting
# copies, the NaN/Inf loss check and buffer broadcast (the Trainer's defaults) and then without (train_hf.py's new
# defaults); (2) issue 15's one-row int4/int8 kernels with wide steps.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
stamp prepare
python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 768 > /root/prep.log 2>&1; echo "prep rc $?"
for setting in waiting new; do
  flags=""
  [ $setting = waiting ] && flags='--accelerator_config {"non_blocking":false} --logging_nan_inf_filter true --ddp_broadcast_buffers true'
  stamp "profile: 1 GPU, $setting"
  timeout 110 python3 benchmarks/results/multi_gpu_2026-11-27d/launch_profile.py 1 8 $setting 32 2 $flags > /root/p.log 2>&1
  echo "rc $?"; grep -E "host per optimizer step|^  rank|GPU idle|graphed decoder layers|values read" /root/p.log | cut -c1-1500
  cp /root/p.log $OUT/profile_1gpu_$setting.log
done
stamp "wide-k kernels"
timeout 250 python3 benchmarks/results/quantized_decoding_2026-11-28/next_wide_k.py > $OUT/wide_k.log 2>&1; echo "rc $?"
grep -i error $OUT/wide_k.log | head -5
python3 - <<'PY'
import json, os
records = [json.loads(line) for line in open(os.path.join(os.environ["OUT"], "kernels_one_row_wide_k.jsonl"))]
for key in sorted({(r["bits"], r["shape"], r["gated"]) for r in records}):
    ranked = sorted((r for r in records if (r["bits"], r["shape"], r["gated"]) == key), key=lambda r: -r["TBps"])
    print(key, [(r["config"] if isinstance(r["config"], str) else (r["config"]["BLOCK_N"], r["config"]["BLOCK_K"],
                 r["config"]["num_warps"], r["config"]["BIT_CAST"]), round(r["TBps"], 3)) for r in ranked[:4]])
PY
stamp end
