# Four GPUs: LoRA at global batch 32 (micro-batch 8), eager against graphed decoder layers on 1 and 4 GPUs; then
# global batch 128 (micro-batch 32) with graphed layers on 1 and 4 GPUs.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
nvidia-smi -L | head -4
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
stamp prepare
python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 1536 > /root/prep.log 2>&1; echo "prep rc $?"
stamp "gb32: 1 and 4 GPUs, eager and graphed"
timeout $((470 - SECONDS)) python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 40 \
  --warmup_steps 12 --gpus 1,4 --variant eager:8:--graphed_layers=false --variant graphed:8 \
  --train_args "$LORA" --output $OUT/gb32_4gpus.jsonl > /root/t.log 2>&1; echo "rc $?"
grep -E "^\||graphed decoder layers" /root/t.log | head -30; tail -c 3000 /root/t.log > $OUT/gb32_tail.log
stamp "gb128: 1 and 4 GPUs, graphed"
timeout $((575 - SECONDS)) python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 128 --steps 10 \
  --warmup_steps 4 --gpus 1,4 --variant graphed:32:--graph_bucket_tokens=1024 \
  --train_args "$LORA" --output $OUT/gb128_4gpus.jsonl > /root/t2.log 2>&1; echo "rc $?"
grep -E "^\||graphed decoder layers" /root/t2.log | head -30; tail -c 3000 /root/t2.log > $OUT/gb128_tail.log
stamp end
