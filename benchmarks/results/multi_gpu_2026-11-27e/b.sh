# One call on the same 4 x H100 machine right after a.sh: intra-op CPU threads per rank (torchrun sets
# OMP_NUM_THREADS=1 for several processes a node and leaves it unset, torch's default of every core, for one).
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
B="python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 16 --warmup_steps 4 --train_args"
for spec in 4:16 1:1 4:16 1:64; do g=${spec%%:*}; t=${spec#*:}; stamp "gpus $g OMP_NUM_THREADS=$t"
  OMP_NUM_THREADS=$t timeout 120 $B "$LORA" --gpus $g --variant omp$t:8 --output $OUT/gb32_omp_threads.jsonl > /root/o.log 2>&1
  echo "rc $?"; grep -E "^\| omp" /root/o.log; [ $SECONDS -gt 330 ] && break; done; stamp end
