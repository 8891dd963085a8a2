"""profile_train.py under torchrun with bench_train's exact train_hf.py flags (LoRA, micro-batch 8).
argv: GPUS TIMED_STEPS [NAME [GLOBAL_BATCH [PROFILED_STEPS [TRAIN_HF_FLAGS...]]]]"""
import subprocess, sys
sys.path.insert(0, "benchmarks")
from bench_train import command
gpus, timed = int(sys.argv[1]), sys.argv[2]
name = sys.argv[3] if len(sys.argv) > 3 else str(gpus)
global_batch = int(sys.argv[4]) if len(sys.argv) > 4 else 32
profiled = sys.argv[5] if len(sys.argv) > 5 else "2"
script = "benchmarks/profile_train.py"
extra = "--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache".split()
extra += sys.argv[6:]
arguments = command(folder="/root/b7", method="lora", gpus=gpus, steps=3 + int(timed) + int(profiled),
                    global_batch=global_batch, per_device_batch=8, output_dir=f"/root/prof{name}", script=script,
                    extra=extra)
at = arguments.index(script) + 1
arguments[at:at] = ["--warmup_steps", "3", "--timed_steps", timed, "--steps", profiled, "--"]
print(" ".join(arguments), flush=True)
sys.exit(subprocess.run(arguments).returncode)
