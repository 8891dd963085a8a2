# GPU tests of this session's training changes; then graphed LoRA at global batch 32 with train_hf.py's new defaults,
# the loss logged every step (a sync each step that ties the ranks and drains each GPU) against every 8 steps.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
( python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 2048 > /root/prep.log 2>&1; echo "prep rc $?" >> /root/prep.log ) &
stamp tests
timeout 120 python3 -m pytest -q tests/test_graphed_layers.py "tests/test_cuda.py::test_train_hf_with_graphed_layers_logs_the_eager_losses_on_cuda" tests/test_train_hf.py -k "cuda or graphed or nothing_stops" -p no:cacheprovider > $OUT/tests.log 2>&1; echo "tests rc $?"; tail -2 $OUT/tests.log
wait; tail -1 /root/prep.log
for every in 1 8; do
  stamp "gb32: 1 and 4 GPUs, new defaults, loss logged every $every"
  timeout 200 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 64 \
    --warmup_steps 16 --gpus 1,4 --log_every $every --variant new_log$every:8 --train_args "$LORA" \
    --output $OUT/gb32_log_every_$every.jsonl > /root/t$every.log 2>&1
  echo "rc $?"; grep -E "^\||Error" /root/t$every.log | cut -c1-300
done
stamp end
