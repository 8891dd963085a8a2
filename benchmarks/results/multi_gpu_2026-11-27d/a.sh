source .call21/common.sh
export LORA="--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache"
nproc; lscpu | grep -E "Model name|Socket|NUMA|Thread|Core"; nvidia-smi topo -m | head -6; command -v numactl taskset
python3 -c "import torch, transformers, peft, accelerate; print(torch.__version__, transformers.__version__, peft.__version__, accelerate.__version__)"
[ -f /root/b7/model/config.json ] || {
stamp prepare
python3 benchmarks/bench_train.py prepare --folder /root/b7 --num_examples 768 > /root/prep.log 2>&1; echo "rc $?"
}
P() { timeout 200 python3 .call22/launch_profile.py $1 10 > /root/p.log 2>&1; echo "rc $?"; grep -E "^timed steps|^  rank|^  the busiest|^rank [0-9]: (host|wall)" /root/p.log | tee -a $OUT/profiles.txt; }
stamp profile 4 GPUs, launch A; echo "== 4 GPUs, launch A" >> $OUT/profiles.txt; P 4
stamp profile 4 GPUs, launch B; echo "== 4 GPUs, launch B" >> $OUT/profiles.txt; P 4
stamp profile 1 GPU; echo "== 1 GPU" >> $OUT/profiles.txt; P 1
tail -c 3000 /root/p.log > $OUT/last_profile_tail.log
stamp end
