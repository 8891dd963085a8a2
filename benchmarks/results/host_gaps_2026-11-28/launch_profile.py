"""profile_train.py with bench_train's exact train_hf.py flags (LoRA, micro-batch 8, global batch 32), each rank's
profiled steps also written as a Chrome trace. argv: GPUS TIMED_STEPS PROFILED_STEPS TRACE_DIR [TRAIN_HF_FLAGS...]"""
import subprocess, sys
sys.path.insert(0, "benchmarks")
from bench_train import command
gpus, timed, profiled, trace_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
script = "benchmarks/profile_train.py"
extra = "--train_sampling_strategy batch_rebalance --cache_image_embeds --embedding_cache_dir /root/cache".split()
arguments = command(folder="/root/b7", method="lora", gpus=gpus, steps=3 + int(timed) + int(profiled),
                    global_batch=32, per_device_batch=8, output_dir=f"/root/prof{gpus}", script=script,
                    extra=extra + sys.argv[5:])
at = arguments.index(script) + 1
arguments[at:at] = ["--warmup_steps", "3", "--timed_steps", timed, "--steps", profiled, "--trace_dir", trace_dir, "--"]
print(" ".join(arguments), flush=True)
sys.exit(subprocess.run(arguments).returncode)
