# Ready for the next session (not run): issue 18 at global batch 32 with the image merge that reads nothing off the
# GPU (modeling_nextgpt.merge_features, index_copy instead of masked_scatter), medians over interleaved launches; then
# what opens the GPU's idle gaps, named by the operators around each synchronisation (no stacks: the host stays fast).
# Also the GPU tests of the merge and the refusal of several GPUs in one process. One 4-GPU machine, ~9 minutes.
# Run from the repository root as a .call23/ copy.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
( python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 2048 > /root/prep.log 2>&1
  echo "prep rc $?" >> /root/prep.log ) &
stamp "GPU tests: the merge under sync debug mode, graphed training; train_hf.py with 4 GPUs in one process"
timeout 120 python3 -m pytest -q tests/test_cuda.py -k "merge or graphed" tests/test_graphed_layers.py \
  -p no:cacheprovider > $OUT/tests.log 2>&1; echo "tests rc $?"; tail -2 $OUT/tests.log
wait; tail -1 /root/prep.log
python3 train_hf.py --stage 2 --model_name_or_path /root/b7/model --data_path /root/b7/data.json \
  --image_folder /root/b7 --output_dir /root/dp --max_steps 1 2>&1 | grep -m1 "GPUs are visible"
stamp "gb32: 1 and 4 GPUs, 64 steps (16 left out), two rounds interleaved"
timeout 420 python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 64 \
  --warmup_steps 16 --gpus 1,4 --repeats 2 --variant default:8 --train_args "$LORA" --output $OUT/gb32_repeats.jsonl \
  > /root/t.log 2>&1; echo "rc $?"; grep -E "^\||Error" /root/t.log | cut -c1-300
[ $SECONDS -lt 500 ] && {
  stamp "profile: 4 GPUs"
  timeout 80 python3 benchmarks/results/multi_gpu_2026-11-27d/launch_profile.py 4 8 four 32 2 > /root/p.log 2>&1
  echo "rc $?"; grep -E "host per optimizer step|^  rank|GPU idle|busiest|Error" /root/p.log | cut -c1-1800
  cp /root/p.log $OUT/profile_4gpus.log; }
stamp end
