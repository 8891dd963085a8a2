"""Training throughput on one and several GPUs, through train_hf.py itself (issues 6 and 11).

`prepare` writes a Llama-2-7B-shaped NextGPT with an ImageBind-huge-shaped tower (random bf16 weights, a 32000-word
word-level tokenizer, so nothing needs downloading), LLaVA-like synthetic conversations with images (stage 2) and
caption pairs (stage 1). `run` launches training with `torchrun` for each variant (a name, a micro-batch and train_hf.py
flags: the fast default against the old padded path, say) and each GPU count, with the same global batch and seed,
and records the throughput after the warm-up steps: sequences/s, real (non-padding) tokens/s, model FLOPs utilisation
per GPU (MFU: real tokens/s x FLOPs per token / (GPUs x one GPU's dense bf16 peak), FLOPs per token being 4 x the
LLM's parameters when its weights are frozen (LoRA, QLoRA, stage 1: forward + input gradients) and 6 x when they
train), the median step time, peak GPU memory (allocated and reserved), the scaling efficiency against the variant's
first GPU count, and how far each loss curve lies from the first run's. A run that fails (out of GPU memory, say) is
recorded with its error. The last lines printed are a table of every run. A host-bound step's speed changes from one
launch to the next (benchmarks/RESULTS.md: up to 27% between identical 1-GPU launches), so `--repeats` runs every
variant and GPU count that many times, interleaved (1, 4, 1, 4, ...), and ends with each count's median and range and
the efficiency of the medians.

    python benchmarks/bench_train.py prepare --folder /tmp/bench7b
    python benchmarks/bench_train.py run --folder /tmp/bench7b --method lora --gpus 1 \
        --variant "padded:8:--packing false --fused_kernels false" --variant "default:32"
    python benchmarks/bench_train.py run --folder /tmp/bench7b --gpus 1,2 --method lora --output results.jsonl
    python benchmarks/bench_train.py run --folder /tmp/bench7b --gpus 1,4 --global_batch 32 --repeats 3
    python benchmarks/bench_train.py run --folder /tmp/bench7b --gpus 2,4,8 --method full   # FSDP, 7B + Adam
    python benchmarks/bench_train.py prepare --folder /tmp/tiny --tiny   # a tiny model: checks the plumbing on CPU
    python benchmarks/bench_train.py prepare --folder /tmp/data --data_only   # then, on the CPU, how evenly each
    python benchmarks/bench_train.py balance --folder /tmp/data --gpus 2,4,8   # sampling spreads the work
"""

import argparse
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from bench_records import append_record  # noqa: E402
from configuration_nextgpt import ImageBindVisionConfig, NextGPTConfig  # noqa: E402
from fast_generation import round_up  # noqa: E402
from graphed_layers import BUCKET_TOKENS  # noqa: E402
from modeling_nextgpt import NextGPTForConditionalGeneration  # noqa: E402
from processing_nextgpt import NextGPTProcessor, imagebind_image_processor  # noqa: E402

SPECIAL_WORDS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"]
# train_hf.py flags of each method (before the variant's own, which may override them), and those it adds on a GPU.
# Full fine-tuning keeps float32 master weights and Adam states (16 bytes a parameter, 108 GB for 7B: more than one
# GPU holds, hence FSDP), bf16 compute, activations recomputed; the others train adapters or the projector over frozen
# bf16 weights. On the CPU everything runs in float32.
FSDP = ["--fsdp", "full_shard auto_wrap",
        "--fsdp_config", json.dumps({"transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"]})]
METHODS = {
    "lora": {"stage": 2, "data": "data.json", "flags": [], "gpu_flags": ["--model_dtype", "bfloat16"]},
    "qlora": {"stage": 2, "data": "data.json", "flags": ["--load_in_4bit", "--gradient_checkpointing", "--optim",
                                                          "paged_adamw_8bit"],
              "gpu_flags": ["--model_dtype", "bfloat16"]},
    "full": {"stage": 2, "data": "data.json", "flags": ["--full_finetune", *FSDP],
             "gpu_flags": ["--model_dtype", "float32", "--gradient_checkpointing"]},
    "stage1": {"stage": 1, "data": "captions.json", "flags": [], "gpu_flags": ["--model_dtype", "bfloat16"]},
}


def word_level_processor(words: list[str], num_image_tokens: int = 1) -> NextGPTProcessor:
    """A NextGPT processor over a whitespace word-level tokenizer (token i = words[i]); needs no downloaded files."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({word: index for index, word in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>", pad_token="</s>")
    return NextGPTProcessor(imagebind_image_processor(), tokenizer, num_image_tokens=num_image_tokens)


def synthetic_records(count: int, words: list[str], images: list[str], seed: int) -> list[dict]:
    """LLaVA-like conversations: one image, 1-3 turns, questions of 8-40 words and answers of 30-200 words."""
    rng = random.Random(seed)

    def sentence(low, high):
        return " ".join(rng.choice(words) for _ in range(rng.randint(low, high)))

    records = []
    for index in range(count):
        turns = []
        for turn in range(rng.randint(1, 3)):
            question = sentence(8, 40)
            turns += [{"from": "human", "value": f"<image>\n{question}" if turn == 0 else question},
                      {"from": "gpt", "value": sentence(30, 200)}]
        records.append({"id": str(index), "image": rng.choice(images), "conversations": turns})
    return records


def synthetic_captions(count: int, words: list[str], images: list[str], seed: int) -> list[dict]:
    """Stage-1 caption pairs: one image and a caption of 8-30 words."""
    rng = random.Random(seed)
    return [{"id": str(index), "image": rng.choice(images),
             "caption": " ".join(rng.choice(words) for _ in range(rng.randint(8, 30)))} for index in range(count)]


def prepare(folder: str, tiny: bool, num_examples: int, data_only: bool = False, seed: int = 0) -> None:
    vocabulary = 256 if tiny else 32000
    words = SPECIAL_WORDS + [f"w{index}" for index in range(vocabulary - len(SPECIAL_WORDS))]
    processor = word_level_processor(words)
    if not data_only:
        if tiny:
            vision = ImageBindVisionConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                           projection_dim=24)
            text = {"model_type": "llama", "vocab_size": vocabulary, "hidden_size": 32, "intermediate_size": 64,
                    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4}
            config = NextGPTConfig(vision_config=vision.to_dict(), text_config=text,
                                   image_token_id=processor.image_token_id)
        else:  # ImageBind-huge tower, Llama-2-7B LLM (the config's defaults)
            config = NextGPTConfig(image_token_id=processor.image_token_id)
        torch.manual_seed(seed)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        torch.set_default_dtype(torch.bfloat16)
        with torch.device(device):  # random init on the GPU takes seconds, not minutes
            model = NextGPTForConditionalGeneration(config)
        torch.set_default_dtype(torch.float32)
        model.save_pretrained(os.path.join(folder, "model"))
    processor.save_pretrained(os.path.join(folder, "model"))
    rng = np.random.default_rng(seed)
    images = []
    for index in range(16):
        images.append(f"image_{index}.png")
        Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(os.path.join(folder, images[-1]))
    with open(os.path.join(folder, "data.json"), "w") as handle:
        json.dump(synthetic_records(num_examples, words[len(SPECIAL_WORDS):], images, seed), handle)
    with open(os.path.join(folder, "captions.json"), "w") as handle:
        json.dump(synthetic_captions(num_examples, words[len(SPECIAL_WORDS):], images, seed), handle)


def accumulation_steps(global_batch: int, per_device_batch: int, gpus: int) -> int:
    accumulation = global_batch // (per_device_batch * gpus)
    if accumulation < 1 or accumulation * per_device_batch * gpus != global_batch:
        raise ValueError(f"a global batch of {global_batch} does not split into {gpus} GPUs x {per_device_batch}")
    return accumulation


def command(*, folder: str, method: str, gpus: int, steps: int, global_batch: int, per_device_batch: int,
            output_dir: str, extra: list[str], script: str, log_every: int = 1,
            launcher: list[str] | None = None) -> list[str]:
    """The torchrun command line (with `launcher`'s flags) for one run of `script` (train_hf.py), logging every
    `log_every` steps; the global batch stays fixed across GPU counts."""
    accumulation = accumulation_steps(global_batch, per_device_batch, gpus)
    arguments = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",  # torchrun
        *(launcher or []), script,
        "--stage", str(METHODS[method]["stage"]), "--model_name_or_path", os.path.join(folder, "model"),
        "--data_path", os.path.join(folder, METHODS[method]["data"]), "--image_folder", folder,
        "--output_dir", output_dir, "--max_steps", str(steps), "--per_device_train_batch_size", str(per_device_batch),
        "--gradient_accumulation_steps", str(accumulation), "--learning_rate", "1e-4",
        "--logging_steps", str(log_every),
        "--save_strategy", "no", "--save_final", "false", "--report_to", "none", "--seed", "0",
        "--model_max_length", "1024", "--dataloader_num_workers", "2", "--ddp_find_unused_parameters", "false",
    ]
    arguments += METHODS[method]["flags"]
    arguments += ["--bf16", *METHODS[method]["gpu_flags"]] if torch.cuda.is_available() else ["--use_cpu"]
    return arguments + extra


# A raised exception's last line, as a rank prints it ("[rank1]: RuntimeError: ..."), or train_hf.py's and argparse's
# "error: ..."; not torchrun's summary, nor the ImportError notices that libraries print and carry on.
RAISED = re.compile(r"^(\[rank\d+\]: )?(?!.*ChildFailedError)[\w.]*(Error|Exception): |^(\S+: )?error: ")


def launch(arguments: list[str]) -> str | None:
    """Runs one training command, echoing its output; returns None, or the first exception it raised if it failed (a
    run that does not fit in GPU memory is a result too)."""
    process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    errors = []
    for line in process.stdout:
        print(line, end="", flush=True)
        if RAISED.match(line):
            errors.append(line.strip())
    if process.wait() == 0:
        return None
    return errors[0] if errors else f"exit status {process.returncode}"


def sequence_lengths(folder: str, data: str = "data.json") -> list[int]:
    """Tokenized length of every synthetic record (image token included, padding not), as train_hf.py sees it."""
    from training_data import load_records, prepare_examples

    processor = NextGPTProcessor.from_pretrained(os.path.join(folder, "model"))
    examples, _ = prepare_examples(load_records(os.path.join(folder, data)), data, processor, folder)
    return [len(example["input_ids"]) for example in examples]


def language_model_parameters(folder: str) -> int:
    """The LLM's parameter count (embeddings and head included, as in '6.74 B' for Llama-2-7B), from the saved
    weights' headers."""
    from safetensors import safe_open

    model_folder = os.path.join(folder, "model")
    total = 0
    for name in os.listdir(model_folder):
        if name.endswith(".safetensors"):
            with safe_open(os.path.join(model_folder, name), "pt") as weights:
                total += sum(math.prod(weights.get_slice(key).get_shape()) for key in weights.keys()
                             if key.startswith("language_model."))
    return total


def micro_batches_per_rank(lengths: list[int], sampling: str, gpus: int, global_batch: int, per_device_batch: int,
                           packed: bool, seed: int = 0) -> list[list[list[list[int]]]]:
    """For each optimizer step, each rank's micro-batches (lists of example indices), dealt as the Trainer deals them:
    random sampling gives rank r the micro-batches r, r + gpus, ... of a shuffled global batch (another shuffle than
    the Trainer's); batch_rebalance is transformers' own sampler with the Trainer's arguments, or with packing the
    token-balanced one train_hf.py puts in its place."""
    from transformers.trainer_pt_utils import BatchRebalanceSampler

    from token_balanced_sampler import TokenBalancedSampler

    accumulation = accumulation_steps(global_batch, per_device_batch, gpus)
    steps = len(lengths) // global_batch
    if sampling == "batch_rebalance":
        sampler = TokenBalancedSampler if packed else BatchRebalanceSampler
        ranks = [list(sampler(lengths, global_batch, gpus, accumulation, rank=rank)) for rank in range(gpus)]
        return [[ranks[rank][step * accumulation:(step + 1) * accumulation] for rank in range(gpus)]
                for step in range(steps)]
    order = random.Random(seed).sample(range(len(lengths)), len(lengths))
    plan = []
    for step in range(steps):
        batch = order[step * global_batch:(step + 1) * global_batch]
        micro = [batch[start:start + per_device_batch] for start in range(0, global_batch, per_device_batch)]
        plan.append([micro[rank::gpus] for rank in range(gpus)])
    return plan


def balance(lengths: list[int], sampling: str, gpus: int, global_batch: int, per_device_batch: int) -> dict:
    """What the sampling alone allows: the scaling efficiency (every rank waits for the busiest one at each optimizer
    step) with padded micro-batches (`--packing false`: a micro-batch's work is its padded tokens), with packed ones
    (the default: its real tokens; attention's share, small at these lengths, left out) and with packed ones through
    graphed layers (the tokens of the bucket each micro-batch runs in, at train_hf.py's default
    `--graph_bucket_tokens`), and the share of real tokens among padded ones."""
    def ceiling(work: list[int]) -> float:
        return sum(work) / (gpus * max(work))

    padded_ceilings, packed_ceilings, graphed_ceilings, real, padded = [], [], [], 0, 0
    for ranks in micro_batches_per_rank(lengths, sampling, gpus, global_batch, per_device_batch, packed=False):
        work = [sum(len(micro) * max(lengths[i] for i in micro) for micro in rank) for rank in ranks]
        padded_ceilings.append(ceiling(work))
        real += sum(lengths[i] for rank in ranks for micro in rank for i in micro)
        padded += sum(work)
    for ranks in micro_batches_per_rank(lengths, sampling, gpus, global_batch, per_device_batch, packed=True):
        tokens = [[sum(lengths[i] for i in micro) for micro in rank] for rank in ranks]
        packed_ceilings.append(ceiling([sum(rank) for rank in tokens]))
        graphed_ceilings.append(ceiling([sum(round_up(micro, BUCKET_TOKENS) for micro in rank)
                                         for rank in tokens]))
    return {"sampling": sampling, "gpus": gpus, "global_batch": global_batch, "per_device_batch": per_device_batch,
            "efficiency_ceiling": statistics.mean(padded_ceilings),
            "packed_efficiency_ceiling": statistics.mean(packed_ceilings),
            "graphed_efficiency_ceiling": statistics.mean(graphed_ceilings), "real_token_share": real / padded}


def summarize(output_dir: str, warmup_steps: int, global_batch: int, mean_tokens: float) -> dict:
    """Logged losses and their steps; throughput over the steps after the warm-up: sequences/s and real tokens/s
    (sequences/s x the data's mean length); the median step time (each logging interval's time over its steps), which
    a few stalled steps do not move; rank 0's peak GPU memory (allocated and reserved) and caching-allocator
    retries."""
    with open(os.path.join(output_dir, "log_history.json")) as handle:
        history = [entry for entry in json.load(handle) if "loss" in entry]
    timed = [entry for entry in history if entry["step"] >= warmup_steps]
    seconds = timed[-1]["elapsed_s"] - timed[0]["elapsed_s"]
    step_seconds = [(after["elapsed_s"] - before["elapsed_s"]) / (after["step"] - before["step"])
                    for before, after in zip(timed, timed[1:])]
    sequences_per_s = global_batch * (timed[-1]["step"] - timed[0]["step"]) / seconds
    return {"losses": [entry["loss"] for entry in history], "loss_steps": [entry["step"] for entry in history],
            "sequences_per_s": sequences_per_s, "real_tokens_per_s": sequences_per_s * mean_tokens,
            "median_step_s": statistics.median(step_seconds), "step_seconds": step_seconds,
            "peak_memory_gib": max((entry.get("peak_memory_gib", 0.0) for entry in history), default=0.0),
            "peak_reserved_gib": max((entry.get("peak_reserved_gib", 0.0) for entry in history), default=0.0),
            "allocator_retries": history[-1].get("allocator_retries", 0)}


def model_flops_utilization(*, real_tokens_per_s: float, method: str, parameters: int, peak_tflops: float,
                            gpus: int) -> float:
    """Model FLOPs per second per GPU over one GPU's peak: 2 x parameters per token forward, as many again for the
    gradients of the activations, and as many again for the weights' gradients when the LLM itself trains (full
    fine-tuning). Work that the recipe adds (recomputed activations, the frozen tower) does not count."""
    flops_per_token = (6 if method == "full" else 4) * parameters
    return real_tokens_per_s * flops_per_token / (gpus * peak_tflops * 1e12)


def efficiency(result: dict, baseline: dict, gpus: int) -> dict:
    """Scaling against the variant's first GPU count that ran: the global batch is the same for every count, so ideal
    scaling divides the step time by the GPU count."""
    return {"efficiency": result["sequences_per_s"] / (baseline["sequences_per_s"] * gpus / baseline["gpus"]),
            "median_step_efficiency": baseline["median_step_s"] * baseline["gpus"] / (result["median_step_s"] * gpus)}


def max_loss_difference(result: dict, first: dict) -> float:
    """Over the steps both runs logged."""
    first_losses = dict(zip(first["loss_steps"], first["losses"]))
    return max(abs(loss - first_losses[step]) for step, loss in zip(result["loss_steps"], result["losses"])
               if step in first_losses)


def parse_variant(text: str) -> dict:
    """`NAME:MICRO_BATCH[:TRAIN_HF_FLAGS]` -> {"name", "per_device_batch", "flags"}."""
    name, _, rest = text.partition(":")
    batch, _, flags = rest.partition(":")
    if not name or not batch.isdigit():
        raise ValueError(f"a variant is NAME:MICRO_BATCH[:FLAGS], got {text!r}")
    return {"name": name, "per_device_batch": int(batch), "flags": flags.split()}


def print_table(records: list[dict]) -> None:
    # Efficiency by median step too: steps that stall now and then (a CUDA graph captured for a new packed length
    # stalls every rank) weigh on seq/s over a short run but not on the median.
    print("| variant | GPUs | micro-batch | seq/s | real tok/s | MFU | median step s "
          "| efficiency by seq/s / median step | peak alloc / reserved GiB | max loss diff vs first | error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in records:
        if "error" in r:
            print(f"| {r['variant']} | {r['gpus']} | {r['per_device_batch']} | | | | | | | | {r['error'][:80]} |")
            continue
        print(f"| {r['variant']} | {r['gpus']} | {r['per_device_batch']} | {r['sequences_per_s']:.2f} | "
              f"{r['real_tokens_per_s']:.0f} | {100 * r['mfu']:.1f}% | {r['median_step_s']:.3f} | "
              f"{100 * r['efficiency']:.1f}% / {100 * r['median_step_efficiency']:.1f}% | "
              f"{r['peak_memory_gib']:.1f} / {r['peak_reserved_gib']:.1f} | "
              f"{r['max_loss_difference_vs_first']:.4f} | |")


def print_repeats(records: list[dict]) -> None:
    """Per variant and GPU count over the repeats: sequences/s median and range, and the efficiency of the medians
    against the variant's first GPU count (and its range over the rounds, each against its own round's baseline)."""
    print("| variant | GPUs | runs | seq/s median (range) | efficiency of medians | efficiency by round |")
    print("|---|---|---|---|---|---|")
    for variant in dict.fromkeys(record["variant"] for record in records):
        runs = [record for record in records if record["variant"] == variant and "error" not in record]
        counts = list(dict.fromkeys(record["gpus"] for record in runs))
        medians = {gpus: statistics.median(r["sequences_per_s"] for r in runs if r["gpus"] == gpus) for gpus in counts}
        for gpus in counts:
            speeds = [r["sequences_per_s"] for r in runs if r["gpus"] == gpus]
            of_medians = medians[gpus] / (medians[counts[0]] * gpus / counts[0])
            by_round = [r["efficiency"] for r in runs if r["gpus"] == gpus]
            print(f"| {variant} | {gpus} | {len(speeds)} | {medians[gpus]:.2f} ({min(speeds):.2f}-{max(speeds):.2f}) | "
                  f"{100 * of_medians:.1f}% | {', '.join(f'{100 * e:.1f}%' for e in by_round)} |")


def plot_loss_curves(records: list[dict], path: str) -> None:
    """One loss curve per run, on one plot: they should lie on top of each other."""
    from train_hf import save_line_plot

    lines = {f"{record['variant']}, {record['gpus']} GPU(s), {record['method']}"
             + (f", run {record['round']}" if record["round"] > 1 else ""):
             list(zip(record["loss_steps"], record["losses"])) for record in records}
    save_line_plot(lines, path, "optimizer step (same global batch for every run)", "training loss",
                   marked=tuple(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["prepare", "run", "balance"],
                        help="balance: how evenly each sampling spreads the data's work over the GPUs (no GPU needed)")
    parser.add_argument("--folder", required=True)
    parser.add_argument("--tiny", action="store_true", help="prepare: a tiny model instead of the 7B shapes")
    parser.add_argument("--data_only", action="store_true", help="prepare: the data and tokenizer, no model (balance)")
    parser.add_argument("--num_examples", type=int, default=512)
    parser.add_argument("--method", default="lora", choices=list(METHODS),
                        help="lora (DDP), qlora (4-bit, checkpointing, paged 8-bit Adam), full (FSDP), stage1")
    parser.add_argument("--gpus", default="1,2", help="process counts to run, the first being the baseline")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup_steps", type=int, default=3, help="steps left out of the throughput")
    parser.add_argument("--global_batch", type=int, default=32, help="sequences per optimizer step (LLaVA: 128)")
    parser.add_argument("--per_device_batch", type=int, default=4, help="micro-batch when no --variant is given")
    parser.add_argument("--variant", action="append", default=[],
                        help='NAME:MICRO_BATCH[:TRAIN_HF_FLAGS], repeatable, run in order, e.g. '
                             '"padded:8:--packing false --fused_kernels false"')
    parser.add_argument("--peak_tflops", type=float, default=989.0,
                        help="the GPU's dense bf16 peak for MFU (H100/H200 SXM: 989)")
    parser.add_argument("--output", default="bench_train.jsonl")
    parser.add_argument("--train_script", default=os.path.join(REPO_ROOT, "train_hf.py"),
                        help="the train_hf.py to run: another checkout's measures the code before a change")
    parser.add_argument("--train_args", default="", help='train_hf.py flags for every run, e.g. "--cache_image_embeds"')
    parser.add_argument("--log_every", type=int, default=1,
                        help="log the loss every this many steps (each log reads the loss off the GPU: a host stall "
                             "that ties the ranks together; train_hf.py's own default logs every 1%% of the steps)")
    parser.add_argument("--torchrun_args", default="", help='torchrun flags for every run, e.g. "--numa-binding node"')
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the GPU counts this many times, interleaved, and summarise each count's median")
    args = parser.parse_args()
    if args.action == "prepare":
        os.makedirs(args.folder, exist_ok=True)
        prepare(args.folder, args.tiny, args.num_examples, args.data_only)
        return
    gpu_counts = [int(count) for count in args.gpus.split(",")]
    try:
        variants = [parse_variant(text) for text in args.variant] or [
            {"name": "default", "per_device_batch": args.per_device_batch, "flags": []}]
        for variant in variants:
            for gpus in gpu_counts:
                accumulation_steps(args.global_batch, variant["per_device_batch"], gpus)
        if args.repeats < 1:
            raise ValueError(f"--repeats must be at least 1, got {args.repeats}")
    except ValueError as error:
        parser.error(str(error))
    lengths = sequence_lengths(args.folder, METHODS[args.method]["data"])
    if args.action == "balance":
        for gpus in gpu_counts:
            for sampling in ("random", "batch_rebalance"):
                print(json.dumps(balance(lengths, sampling, gpus, args.global_batch, args.per_device_batch)))
        return
    mean_tokens, parameters, first, records = statistics.mean(lengths), language_model_parameters(args.folder), None, []
    for run, variant in ((run, variant) for run in range(1, args.repeats + 1) for variant in variants):
        baseline = None
        for gpus in gpu_counts:
            output_dir = os.path.join(args.folder, f"run_{args.method}_{variant['name']}_{gpus}")
            arguments = command(folder=args.folder, method=args.method, gpus=gpus, steps=args.steps,
                                global_batch=args.global_batch, per_device_batch=variant["per_device_batch"],
                                output_dir=output_dir, extra=args.train_args.split() + variant["flags"],
                                script=args.train_script, log_every=args.log_every,
                                launcher=args.torchrun_args.split())
            print(" ".join(arguments), flush=True)
            setting = {"method": args.method, "variant": variant["name"], "gpus": gpus, "round": run,
                       "global_batch": args.global_batch, "per_device_batch": variant["per_device_batch"],
                       "steps": args.steps, "warmup_steps": args.warmup_steps, "log_every": args.log_every,
                       "mean_tokens": mean_tokens,
                       "llm_parameters": parameters, "peak_tflops": args.peak_tflops,
                       "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                       "allocator_config": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""),
                       "command": " ".join(arguments)}
            error = launch(arguments)
            if error:
                record = {**setting, "error": error}
            else:
                result = summarize(output_dir, args.warmup_steps, args.global_batch, mean_tokens)
                baseline, first = baseline or {**result, "gpus": gpus}, first or result
                record = {**setting, **result, **efficiency(result, baseline, gpus),
                          "mfu": model_flops_utilization(real_tokens_per_s=result["real_tokens_per_s"],
                                                         method=args.method, parameters=parameters,
                                                         peak_tflops=args.peak_tflops, gpus=gpus),
                          "max_loss_difference_vs_first": max_loss_difference(result, first)}
            records.append(record)
            append_record(args.output, record)
    finished = [record for record in records if "error" not in record]
    if finished:
        plot_loss_curves(finished, os.path.splitext(args.output)[0] + ".png")
    print_table(records)
    if args.repeats > 1:
        print_repeats(records)


if __name__ == "__main__":
    main()
