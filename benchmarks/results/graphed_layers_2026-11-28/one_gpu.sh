# One H100: graphed decoder layers' GPU tests, then LoRA at global batch 32 (micro-batch 8) and 128 (32), eager
# against graphed layers, 1 GPU.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
stamp prepare-in-background
( python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 768 > /root/prep.log 2>&1; echo "prep rc $?" >> /root/prep.log ) &
stamp tests
timeout 200 python3 -m pytest -q tests/test_graphed_layers.py "tests/test_cuda.py::test_train_hf_with_graphed_layers_logs_the_eager_losses_on_cuda" -p no:cacheprovider > $OUT/tests.log 2>&1; echo "tests rc $?"; tail -25 $OUT/tests.log
wait; tail -2 /root/prep.log
stamp "gb32 1 GPU eager vs graphed"
timeout $((560 - SECONDS)) python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 16 \
  --warmup_steps 4 --gpus 1 --repeats 2 --variant eager:8:--graphed_layers=false --variant graphed:8 \
  --train_args "$LORA" --output $OUT/gb32_1gpu.jsonl > /root/t.log 2>&1; echo "rc $?"; grep -E "^\||graphed decoder layers|Error" /root/t.log | head -40
tail -c 3000 /root/t.log > $OUT/gb32_tail.log
stamp end
