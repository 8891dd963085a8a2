# NOT YET RUN (no device time was left): on one 4 x H100 machine, train_hf.py's --cpu_threads (automatic: 16 a rank
# here) against one thread a rank (torchrun's OMP_NUM_THREADS=1), at 1 and 4 GPUs; then each rank's host operators by
# own CPU time at 4 GPUs with the default and with one thread (what ran intra-op parallel). About 8 minutes.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh  # the carried wheels (.whl), the environment
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
[ -f /root/b7/model/config.json ] || python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 768 > /root/prep.log 2>&1
stamp "gb32, 1 and 4 GPUs, default threads and one thread"
timeout 280 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 16 \
  --warmup_steps 4 --gpus 1,4 --variant default:8 --variant one_thread:8:--cpu_threads=1 \
  --train_args "$LORA" --output $OUT/gb32_cpu_threads.jsonl > /root/t.log 2>&1; echo "rc $?"; grep -E "^\|" /root/t.log
for spec in "4 auto" "4 one --cpu_threads 1"; do set -- $spec
  stamp "profile: $1 GPUs, threads $2"; echo "== $1 GPUs, threads $2" >> $OUT/host_operators.txt
  timeout 75 python3 benchmarks/results/multi_gpu_2026-11-27d/launch_profile.py $1 4 $2 32 2 ${@:3} > /root/p.log 2>&1
  echo "rc $?"; grep -E "host operators|host per optimizer step" /root/p.log | tee -a $OUT/host_operators.txt
done
stamp end
