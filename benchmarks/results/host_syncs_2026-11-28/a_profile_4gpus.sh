# Issue 18: where the ~36 ms a graphed 4-GPU step pays beyond one GPU go, and two cheap levers (no per-micro-batch
# NaN/Inf loss read, no per-forward buffer broadcast), 1 and 4 GPUs each, on one 4-GPU machine.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
stamp prepare
python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 1536 > /root/prep.log 2>&1; echo "prep rc $?"
stamp "gb32: 1 and 4 GPUs, graphed, and graphed without the two syncs, 40 steps (16 left out)"
timeout 330 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 40 \
  --warmup_steps 16 --gpus 1,4 --variant graphed:8 \
  --variant "nosync:8:--logging_nan_inf_filter=false --ddp_broadcast_buffers=false" --train_args "$LORA" \
  --output $OUT/gb32_syncs.jsonl > /root/t.log 2>&1
echo "rc $?"; grep -E "^\||graphed decoder layers|Error" /root/t.log | cut -c1-300
cp /root/t.log $OUT/gb32_syncs.log
for gpus in 4 1; do
  [ $SECONDS -gt 480 ] && break
  stamp "profile: $gpus GPUs"
  timeout 85 python3 benchmarks/results/multi_gpu_2026-11-27d/launch_profile.py $gpus 8 graphed$gpus 32 2 > /root/p.log 2>&1
  echo "rc $?"; grep -E "host per optimizer step|^  rank|^timed|GPU idle|graphed decoder layers|busiest|^per optimizer|^  [a-zA-Z(]" /root/p.log | cut -c1-600
  cp /root/p.log $OUT/profile_graphed_$gpus.log
done
stamp end
