source .call21/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
[ -f /root/b7/model/config.json ] || { stamp prepare; python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 768 > /root/prep.log 2>&1; echo "rc $?"; }
B="python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 20 --warmup_steps 4"
stamp 4 GPUs: broadcast buffers on/off, alternating
timeout 330 $B --gpus 4 --variant default:8 --variant no_buffer_broadcast:8:--ddp_broadcast_buffers=false --variant default_2:8 --variant no_buffer_broadcast_2:8:--ddp_broadcast_buffers=false --train_args "$LORA" --output $OUT/gb32_broadcast_buffers.jsonl > /root/d.log 2>&1; echo "rc $?"; grep -E "^\|" /root/d.log
stamp 1 GPU, no accumulation
timeout 120 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 8 --steps 20 --warmup_steps 4 --gpus 1 --variant no_accumulation:8 --train_args "$LORA" --output $OUT/gb8_1gpu.jsonl > /root/e.log 2>&1; echo "rc $?"; grep -E "^\|" /root/e.log
stamp end
