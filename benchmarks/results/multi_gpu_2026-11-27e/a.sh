# One 4 x H100 machine: global batch 32 at 1 and 4 GPUs, three interleaved rounds; then DDP static graph at 4.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
stamp prepare
python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 768 > /root/prep.log 2>&1; echo "rc $?"
B="python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 16 --warmup_steps 4"
stamp "gb32, 1 and 4 GPUs, 3 rounds interleaved"
timeout 400 $B --gpus 1,4 --repeats 3 --variant default:8 --train_args "$LORA" --output $OUT/gb32_repeats.jsonl > /root/r.log 2>&1; echo "rc $?"; grep -E "^\|" /root/r.log
if [ $SECONDS -lt 450 ]; then
stamp "gb32, 4 GPUs, DDP static graph"
timeout $((560 - SECONDS)) $B --gpus 4 --variant static_graph:8:--ddp_static_graph=true --train_args "$LORA" --output $OUT/gb32_static_graph.jsonl > /root/s.log 2>&1; echo "rc $?"; grep -E "^\|" /root/s.log
fi
tail -c 1500 /root/r.log > $OUT/repeats_tail.log
stamp end
