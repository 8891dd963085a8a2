# One H100 (80 GB): GPU tests of the graphed layers (longest bucket captured first), then LoRA on one GPU, eager
# against graphed: micro-batches of 32 (global batch 128: peak memory) and of 8 (global batch 32).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
( python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 768 > /root/prep.log 2>&1; echo "prep rc $?" >> /root/prep.log ) &
stamp tests
timeout 150 python3 -m pytest -q tests/test_graphed_layers.py "tests/test_cuda.py::test_train_hf_with_graphed_layers_logs_the_eager_losses_on_cuda" -p no:cacheprovider > $OUT/tests.log 2>&1; echo "tests rc $?"; tail -4 $OUT/tests.log
wait; tail -1 /root/prep.log
stamp "gb128 1 GPU eager vs graphed"
timeout $((330 - SECONDS)) python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 128 --steps 8 \
  --warmup_steps 3 --gpus 1 --variant eager:32:--graphed_layers=false --variant graphed:32:--graph_bucket_tokens=1024 \
  --train_args "$LORA" --output $OUT/gb128_1gpu.jsonl > /root/t.log 2>&1; echo "rc $?"; grep -E "^\||graphed decoder layers" /root/t.log | head
tail -c 2000 /root/t.log > $OUT/gb128_tail.log
stamp "gb32 1 GPU eager vs graphed"
timeout $((560 - SECONDS)) python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 24 \
  --warmup_steps 8 --gpus 1 --variant eager:8:--graphed_layers=false --variant graphed:8 \
  --train_args "$LORA" --output $OUT/gb32_1gpu.jsonl > /root/t2.log 2>&1; echo "rc $?"; grep -E "^\||graphed decoder layers" /root/t2.log | head
tail -c 2000 /root/t2.log > $OUT/gb32_tail.log
stamp end
