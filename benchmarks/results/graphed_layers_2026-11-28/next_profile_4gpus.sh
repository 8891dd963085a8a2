# Ready for the next session (not run): where the ~40 ms a 4-GPU step pays beyond one GPU go, with graphed layers.
# One 4-GPU machine, ~8 min: global batch 32 on 1 and 4 GPUs, long enough that every length is captured before the
# measured steps; then profile_train.py's timed steps (busy / waiting for the GPU / phases, slowest rank's excess) on
# 4 GPUs and on 1. Run from the repository root as a .call23/ copy.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
stamp prepare
python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 1536 > /root/prep.log 2>&1; echo "prep rc $?"
stamp "gb32: 1 and 4 GPUs, graphed, 60 steps (20 left out)"
timeout 300 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 60 \
  --warmup_steps 20 --gpus 1,4 --variant graphed:8 --train_args "$LORA" --output $OUT/gb32_long.jsonl > /root/t.log 2>&1
echo "rc $?"; grep -E "^\||graphed decoder layers" /root/t.log
# DDP broadcasts the module buffers at every forward: a collective that makes each GPU wait for the last rank's host.
stamp "gb32: 4 GPUs, graphed, no buffer broadcast"
timeout 120 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 60 \
  --warmup_steps 20 --gpus 4 --variant graphed_no_broadcast:8:--ddp_broadcast_buffers=false --train_args "$LORA" \
  --output $OUT/gb32_long_no_broadcast.jsonl > /root/t3.log 2>&1; echo "rc $?"; grep -E "^\|" /root/t3.log
for gpus in 4 1; do
  [ $SECONDS -gt 500 ] && break
  stamp "profile: $gpus GPUs"
  timeout 90 python3 benchmarks/results/multi_gpu_2026-11-27d/launch_profile.py $gpus 12 graphed$gpus 32 2 > /root/p.log 2>&1
  echo "rc $?"; grep -E "host per optimizer step|^  rank|^timed|graphed decoder layers" /root/p.log | cut -c1-400
  cp /root/p.log $OUT/profile_graphed_$gpus.log
done
stamp end
