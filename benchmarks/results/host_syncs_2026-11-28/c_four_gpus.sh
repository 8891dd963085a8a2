# Issue 18, 4 GPUs: graphed LoRA at global batch 32 with the Trainer's waiting defaults against train_hf.py's new
# ones (batches copied without waiting, no NaN/Inf loss read, no buffer broadcast), 1 and 4 GPUs each; bf16
# all-reduce at 4; then a 4-GPU profile naming what opened each GPU idle gap.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
stamp prepare
python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 1536 > /root/prep.log 2>&1; echo "prep rc $?"
stamp "gb32: 1 and 4 GPUs, waiting vs new defaults, 40 steps (16 left out)"
timeout 330 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 40 \
  --warmup_steps 16 --gpus 1,4 \
  --variant 'waiting:8:--accelerator_config={"non_blocking":false} --logging_nan_inf_filter=true --ddp_broadcast_buffers=true' \
  --variant new:8 --train_args "$LORA" --output $OUT/gb32_waiting_vs_new.jsonl > /root/t.log 2>&1
echo "rc $?"; grep -E "^\||Error" /root/t.log | cut -c1-300
cp /root/t.log $OUT/gb32_waiting_vs_new.log
stamp "gb32: 4 GPUs, new defaults, bf16 all-reduce"
timeout 100 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 40 \
  --warmup_steps 16 --gpus 4 --variant "bf16_allreduce:8:--ddp_gradient_dtype bfloat16" --train_args "$LORA" \
  --output $OUT/gb32_bf16_allreduce.jsonl > /root/t2.log 2>&1; echo "rc $?"; grep -E "^\||Error" /root/t2.log | cut -c1-300
[ $SECONDS -lt 470 ] && {
  stamp "profile: 4 GPUs, new defaults"
  timeout 90 python3 benchmarks/results/multi_gpu_2026-11-27d/launch_profile.py 4 8 new4 32 2 > /root/p.log 2>&1
  echo "rc $?"; grep -E "host per optimizer step|^  rank|GPU idle|busiest|Error" /root/p.log | cut -c1-1800
  cp /root/p.log $OUT/profile_4gpus_new.log; }
stamp end
