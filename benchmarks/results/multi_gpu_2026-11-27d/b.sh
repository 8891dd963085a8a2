source .call21/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
P() { timeout 200 python3 .call22/launch_profile.py $1 10 > /root/p.log 2>&1; echo "rc $?"; grep -E "^timed steps|^  rank|^  the busiest|^rank [0-9]: (host|wall)" /root/p.log | tee -a $OUT/profiles.txt; }
B="python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 20 --warmup_steps 4"
stamp bench gb32 1,4
timeout 330 $B --gpus 1,4 --variant default:8 --train_args "$LORA" --output $OUT/gb32.jsonl > /root/b.log 2>&1; echo "rc $?"; grep -E "^\|" /root/b.log
if command -v numactl >/dev/null && [ $SECONDS -lt 380 ]; then
stamp bench gb32 4 numa exclusive
timeout 200 $B --gpus 4 --variant exclusive:8 --train_args "$LORA" --torchrun_args "--numa-binding exclusive" --output $OUT/gb32_numa.jsonl > /root/n.log 2>&1; echo "rc $?"; grep -E "^\||numa|NUMA" /root/n.log | head
fi
stamp profile 4 GPUs, launch C; echo "== 4 GPUs, launch C" >> $OUT/profiles.txt; P 4
tail -c 3000 /root/p.log > $OUT/last_profile_tail.log
stamp end
