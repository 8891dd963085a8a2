# One H100 (80 GB): GPU tests, then LoRA micro-batches of 32 with graphed layers (warm-up only for a pool's first
# bucket, no copy of each layer's output left in the pool): does it fit beside the pool now?
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
( python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 768 > /root/prep.log 2>&1; echo "prep rc $?" >> /root/prep.log ) &
stamp tests
timeout 150 python3 -m pytest -q tests/test_graphed_layers.py "tests/test_cuda.py::test_train_hf_with_graphed_layers_logs_the_eager_losses_on_cuda" -p no:cacheprovider > $OUT/tests.log 2>&1; echo "tests rc $?"; tail -2 $OUT/tests.log
wait; tail -1 /root/prep.log
stamp "gb128 1 GPU graphed"
timeout $((270 - SECONDS)) python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 128 --steps 8 \
  --warmup_steps 3 --gpus 1 --variant graphed:32:--graph_bucket_tokens=1024 \
  --train_args "$LORA" --output $OUT/gb128_1gpu.jsonl > /root/t.log 2>&1; echo "rc $?"; grep -E "^\||graphed decoder layers" /root/t.log | head
tail -c 2000 /root/t.log > $OUT/gb128_tail.log
stamp end
