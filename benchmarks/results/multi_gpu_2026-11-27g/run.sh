# One 4-GPU machine: DDP static_graph (Trainer's --ddp_static_graph) against the default at 4 GPUs, global batch 32,
# interleaved twice; then the 1-GPU baseline once.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
nvidia-smi -L | head -4
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
stamp prepare
[ -f /root/b7/model/config.json ] || python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 768 > /root/prep.log 2>&1
stamp "gb32, 4 GPUs, default and static graph, twice"
timeout 330 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 16 \
  --warmup_steps 4 --gpus 4 --repeats 2 --variant default:8 --variant static_graph:8:--ddp_static_graph=true \
  --train_args "$LORA" --output $OUT/gb32_static_graph_4gpus.jsonl > /root/t.log 2>&1; echo "rc $?"; grep -E "^\|" /root/t.log
tail -c 2000 /root/t.log > $OUT/static_graph_tail.log
stamp "gb32, 1 GPU"
timeout $((540 - SECONDS)) python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 16 \
  --warmup_steps 4 --gpus 1 --variant default:8 \
  --train_args "$LORA" --output $OUT/gb32_one_gpu.jsonl > /root/t1.log 2>&1; echo "rc $?"; grep -E "^\|" /root/t1.log
tail -c 2000 /root/t1.log > $OUT/one_gpu_tail.log
stamp end
