# One 4 x H100 machine: train_hf.py --cpu_threads automatic (16 a rank at 4 GPUs, every core at 1) against one thread
# a rank, at 1 and 4 GPUs, global batch 32; then each rank's host operators by own CPU time: 4 GPUs automatic, 1 GPU
# automatic, 4 GPUs one thread.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh  # the carried wheels (.whl), the environment
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
stamp prepare
[ -f /root/b7/model/config.json ] || python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 768 > /root/prep.log 2>&1
stamp "gb32, 1 and 4 GPUs, automatic threads and one thread"
timeout 300 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 16 \
  --warmup_steps 4 --gpus 1,4 --variant default:8 --variant one_thread:8:--cpu_threads=1 \
  --train_args "$LORA" --output $OUT/gb32_cpu_threads.jsonl > /root/t.log 2>&1; echo "rc $?"; grep -E "^\|" /root/t.log
tail -c 3000 /root/t.log > $OUT/cpu_threads_tail.log
for spec in "4 auto" "1 auto" "4 one --cpu_threads 1"; do set -- $spec
  [ $SECONDS -gt 500 ] && break
  stamp "profile: $1 GPUs, threads $2"; echo "== $1 GPUs, threads $2" >> $OUT/host_operators.txt
  timeout 80 python3 benchmarks/results/multi_gpu_2026-11-27d/launch_profile.py $1 4 $2 32 2 ${@:3} > /root/p.log 2>&1
  echo "rc $?"; grep -E "host operators|host per optimizer step|^  rank|^timed" /root/p.log | tee -a $OUT/host_operators.txt | cut -c1-400
  cp /root/p.log $OUT/profile_$1_$2.log
done
stamp end
