# Issue 18, fourteenth session, third call: logging every step without waiting for the GPU (--deferred_logging, the
# new default) against the Trainer's reads (--deferred_logging false), global batch 32 on 1 and 4 GPUs, 64 steps
# (16 left out), both with b_padded_rows.sh's fixes; then the GPU tests. Run from the repository root on 4 GPUs.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 2048 > /root/prep.log 2>&1; tail -1 /root/prep.log
stamp "gb32: deferred and synced logging, every step"
timeout 330 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 64 \
  --warmup_steps 16 --gpus 1,4 --variant "deferred:8" --variant "synced:8:--deferred_logging false" \
  --train_args "$LORA" --output $OUT/gb32_logging.jsonl > /root/t.log 2>&1; echo "rc $?"
grep -E "^\||Error" /root/t.log | cut -c1-300
stamp "GPU tests"
timeout 100 python3 -m pytest -q tests/test_cuda.py tests/test_graphed_layers.py \
  tests/test_packing.py tests/test_train_hf.py -k "merge or graphed or packed or deferred or liger" \
  -p no:cacheprovider > $OUT/tests.log 2>&1; echo "tests rc $?"; tail -2 $OUT/tests.log
stamp end
