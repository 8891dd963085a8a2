# Issue 18, fourteenth session, second call: the fixes found in a_traces.sh's traces (packed rows padded to the graph
# bucket, no mask building for packed batches, cheaper weight check in graphed layers) against the commit before them
# (.call23/base: `git archive fe74a42`), global batch 32 on 1 and 4 GPUs, 64 steps (16 left out); then the GPU tests
# and the new code profiled on 4 GPUs with its traces. Run from the repository root on 4 GPUs.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 2048 > /root/prep.log 2>&1; tail -1 /root/prep.log
bench() {  # NAME FOLDER [LOG_EVERY]
  stamp "gb32 $1"
  ( cd $2 && timeout 240 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 \
    --steps 64 --warmup_steps 16 --gpus 1,4 --log_every ${3:-1} --variant $1:8 --train_args "$LORA" \
    --output $OUT/gb32_$1.jsonl > /root/t_$1.log 2>&1 ); echo "rc $?"; grep -E "^\||Error" /root/t_$1.log | cut -c1-300
}
bench new .
bench base .call23/base
stamp "GPU tests"
timeout 100 python3 -m pytest -q tests/test_cuda.py -k "merge or graphed or train" tests/test_graphed_layers.py \
  tests/test_packing.py -p no:cacheprovider > $OUT/tests.log 2>&1; echo "tests rc $?"; tail -2 $OUT/tests.log
[ $SECONDS -lt 440 ] && bench new_log8 . 8
[ $SECONDS -lt 520 ] && {
  stamp "profile: 4 GPUs"
  timeout 70 python3 benchmarks/results/host_gaps_2026-11-28/launch_profile.py 4 4 2 /root/traces4 > /root/p4.log 2>&1
  echo "rc $?"; grep -E "host per optimizer step|GPU idle" /root/p4.log | cut -c1-1500; cp /root/p4.log $OUT/profile_4gpus.log
  gzip -c /root/traces4/rank0.json > $OUT/trace_4gpus_rank0.json.gz; }
stamp end
