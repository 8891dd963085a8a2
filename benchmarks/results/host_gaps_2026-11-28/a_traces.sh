# Issue 18, 2026-11-28 (fourteenth session), first call: the GPU tests again after Liger's kernels were kept on their
# model, then 1 and 4 GPUs at global batch 32 profiled with the launch that ended each host-bound GPU gap named, and
# the profiled steps kept as Chrome traces (rank 0 and the busiest rank) to read offline. Run from the repository root
# as a .call23/ copy on 4 GPUs.
source benchmarks/results/quantized_decoding_2026-11-27c/common.sh
( python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 2048 > /root/prep.log 2>&1
  echo "prep rc $?" >> /root/prep.log ) &
stamp "GPU tests"
timeout 150 python3 -m pytest -q tests/test_cuda.py -k "merge or graphed" tests/test_graphed_layers.py \
  tests/test_train_hf.py -k "merge or graphed or liger or fused" -p no:cacheprovider > $OUT/tests.log 2>&1
echo "tests rc $?"; tail -2 $OUT/tests.log
wait; tail -1 /root/prep.log
for gpus in 4 1; do
  stamp "profile: $gpus GPUs"
  timeout 120 python3 benchmarks/results/host_gaps_2026-11-28/launch_profile.py $gpus 8 2 /root/traces$gpus \
    > /root/p$gpus.log 2>&1; echo "rc $?"
  grep -E "host per optimizer step|^  rank|GPU idle|busiest|Error" /root/p$gpus.log | cut -c1-2500
  cp /root/p$gpus.log $OUT/profile_${gpus}gpus.log
  for rank in 0 1; do [ -f /root/traces$gpus/rank$rank.json ] && gzip -c /root/traces$gpus/rank$rank.json \
    > $OUT/trace_${gpus}gpus_rank$rank.json.gz; done
done
ls -la $OUT; stamp end
