source .call18/common.sh
stamp start
df -h /dev/shm | tail -1; nvidia-smi topo -m | head -6; nvidia-smi nvlink --status -i 0 | head -4
bw() { torchrun --standalone --nproc_per_node 4 benchmarks/results/multi_gpu_2026-11-27/nccl_all_reduce.py 2>&1 | grep -E "all_reduce|NCCL INFO Channel 00/0 : 0\[|NCCL INFO.*(via|Using network|NET/)" | sort | uniq | head -8; }
stamp nccl default; NCCL_DEBUG=INFO bw
stamp nccl P2P_LEVEL=SYS; NCCL_P2P_LEVEL=SYS NCCL_DEBUG=INFO bw
stamp nccl P2P_DISABLE=1 '(shm)'; NCCL_P2P_DISABLE=1 NCCL_DEBUG=INFO bw
B="python3 benchmarks/bench_train.py run --folder /root/b7 --method lora --global_batch 32 --steps 20 --warmup_steps 4 --train_args"
stamp gb32: float32 vs bfloat16 all-reduce
$B "$LORA_ARGS" --gpus 1,4 --variant "fp32:8" --variant "bf16-grads:8:--ddp_gradient_dtype bfloat16" --output $OUT/gb32_gradient_dtype.jsonl > /root/r1.log 2>&1; grep -E "^\||Error" /root/r1.log
if [ $SECONDS -lt 420 ]; then
stamp gb32: bfloat16 all-reduce, 100 MB buckets, 4 GPUs
$B "$LORA_ARGS" --gpus 4 --variant "bf16-grads-bucket100:8:--ddp_gradient_dtype bfloat16 --ddp_bucket_cap_mb 100" --output $OUT/gb32_bucket100.jsonl > /root/r2.log 2>&1; grep -E "^\||Error" /root/r2.log
fi
tail -c 2000 /root/r1.log > $OUT/r1_tail.log
stamp end $SECONDS s
