"""Train a NextGPT in two stages with the transformers Trainer.

Stage 1 aligns the projector on image-caption pairs (tower and LLM frozen); stage 2 instruction-tunes on LLaVA-style
conversations (projector + LoRA, QLoRA with --load_in_4bit, or --full_finetune), starting from a stage-1 output.
Every TrainingArguments option passes straight through (--bf16, --gradient_checkpointing, --per_device_train_batch_size,
--resume_from_checkpoint, ...). Launch on several GPUs with `accelerate launch` or `torchrun`; see the README.
Micro-batches are packed without padding (--packing) and, on CUDA, the LLM runs Liger's fused kernels (--fused_kernels,
with liger-kernel) and its decoder layers replay from CUDA graphs (--graphed_layers); the README's "How training is
made fast" says what each buys. The final folder
(output_dir/final) holds a model card with the run's record; --push_to_hub --hub_model_id USER/NAME uploads it.

    python train_hf.py --stage 1 --llm meta-llama/Llama-2-7b-chat-hf --vision_tower imagebind_huge.pth \\
        --data_path captions.jsonl --image_folder images --output_dir outputs/stage1 --cache_image_embeds --bf16
    python train_hf.py --stage 2 --model_name_or_path outputs/stage1/final --data_path instruct.json \\
        --image_folder images --output_dir outputs/stage2 --cache_image_embeds --bf16
"""

import functools
import gc
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from unittest.mock import patch

import torch
from accelerate.utils import DDPCommunicationHookType, DistributedDataParallelKwargs
from peft.helpers import disable_input_dtype_casting
from transformers import (
    BitsAndBytesConfig,
    HfArgumentParser,
    PreTrainedModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_pt_utils import BatchRebalanceSampler
from transformers.utils.hub import hf_api

from assemble_nextgpt import assemble_nextgpt
from checkpoints import MarkCompleteCheckpoints, checkpoint_to_resume
from cli import DTYPES, missing_local_folder
from graphed_layers import BUCKET_TOKENS, GraphedDecoderLayers, graph_decoder_layers
from modeling_nextgpt import NextGPTForConditionalGeneration
from model_card import assembled_card_data, read_card_data, training_record, write_model_card
from packed_attention import enable_packed_attention
from processing_nextgpt import NextGPTProcessor
from token_balanced_sampler import TokenBalancedSampler
from training_logs import LoggingTrainer
from training_data import COLLATED_MEDIA, DEFAULT_CAPTION_PROMPT, NextGPTCollator, load_records, prepare_examples


def final_folder(output_dir: str) -> str:
    """Where a run's complete model (with its processor and card) is written: stage 2 starts from it; it is pushed."""
    return os.path.join(output_dir, "final")


# --ddp_gradient_dtype -> DDP's communication hook (accelerate's names for torch's compression hooks).
DDP_GRADIENT_HOOKS = {"float32": DDPCommunicationHookType.NO, "bfloat16": DDPCommunicationHookType.BF16,
                      "float16": DDPCommunicationHookType.FP16}


def option(default, help: str):
    """A dataclass field with its --help text."""
    return field(default=default, metadata={"help": help})


@dataclass
class NextGPTArguments:
    stage: int = option(1, "1: train the projector only. 2: projector + LoRA (or full LLM).")
    train_instruct: bool = option(False, "Alias for --stage 2 (the original CLI's flag).")
    model_name_or_path: str | None = option(
        None, "A NextGPT folder or hub id; for stage 2, the stage-1 output (its 'final').")
    llm: str | None = option(None, "Stage 1 from parts: the LLM's folder or hub id.")
    llm_gguf_file: str | None = option(None, "A GGUF file inside --llm to load from.")
    vision_tower: str | None = option(None, "Stage 1 from parts: efficientnet-lite0 (packaged; "
                                            "efficientnet-lite0-stem adds the stem's colour channels, "
                                            "-stem-max their maximum over each cell too), Meta's "
                                            "imagebind_huge.pth, or a transformers vision model id/folder.")
    audio_tower: str | None = option(None, "Stage 1 from parts: Meta's imagebind_huge.pth (its audio branch) or "
                                           "speech_embedding (Google's speech encoder, offline), which takes the "
                                           "records' 'audio' (<audio> placeholders).")
    image_mode: str = option("embedding", "embedding (1 token/image) or patches (all tokens).")
    projector_type: str = option("linear", "linear or mlp2x_gelu.")
    model_dtype: str = option("auto", "dtype of the frozen weights: auto (bfloat16 with --bf16, float16 with --fp16, "
                                      "else float32), float32, bfloat16, float16.")
    data_path: str = option(None, "Training records: .json, .jsonl, or a dataset id.")
    data_split: str = option("train", "Split to read when --data_path is a dataset id.")
    eval_data_path: str | None = option(None, "Held-out records for eval loss and VQA accuracy.")
    image_folder: str | None = option(None, "Folder that image paths in the records are relative to.")
    caption_prompt: str = option(DEFAULT_CAPTION_PROMPT, "Question asked for caption records.")
    model_max_length: int = option(1024, "Longest tokenized conversation; only the end of the last reply may be cut.")
    packing: bool = option(True, "Put each micro-batch in one row without padding, examples kept apart by "
                                 "variable-length attention (false: pad every example to the longest).")
    fused_kernels: str = option("auto", "Liger's Triton kernels on the LLM (RMSNorm, SwiGLU, RoPE, fused linear "
                                        "cross-entropy): auto (on CUDA when liger-kernel is installed), true, false.")
    graphed_layers: str = option("auto", "Replay the LLM's decoder layers from CUDA graphs, two launches a layer "
                                         "instead of ~120 (graphed_layers.py): auto (on CUDA for packed stage-1 and "
                                         "LoRA training), true, false.")
    graph_bucket_tokens: int = option(BUCKET_TOKENS, "Graphed layers: a packed micro-batch is padded to the next "
                                                     "multiple of this many tokens, and each such length is captured "
                                                     "once.")
    skip_bad_records: bool = option(False, "Skip bad records (reported) instead of stopping.")
    max_train_samples: int | None = option(None, "Train on the first N records only (a quick trial: only their "
                                                 "images are checked and encoded).")
    max_eval_samples: int | None = option(None, "Evaluate on the first N held-out records only.")
    cache_image_embeds: bool = option(False, "Encode each image (and video, and audio file) once and train from the "
                                             "cached features.")
    embedding_cache_dir: str = option(os.path.join(os.path.expanduser("~"), ".cache", "nano_nextgpt", "image_embeds"),
                                      "Where the cached image features are kept.")
    embedding_cache_dtype: str = option("float16", "float16 (half the disk) or float32.")
    embedding_batch_size: int = option(64, "Images per tower call when filling the cache.")
    full_finetune: bool = option(False, "Stage 2: train the whole LLM instead of LoRA.")
    lora_r: int = 64
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_target_modules: str = option("q_proj,k_proj,v_proj,o_proj", "Comma-separated LLM module names.")
    merge_lora: bool = option(False, "Merge LoRA into the LLM in the final folder (else keep an adapter).")
    load_in_4bit: bool = option(False, "QLoRA: load the LLM in 4-bit NF4 (CUDA, bitsandbytes).")
    load_in_8bit: bool = option(False, "Load the LLM in 8-bit (CUDA, bitsandbytes).")
    vqa_eval_batch_size: int = 16
    save_final: bool = option(True, "Write output_dir/final (false: benchmarks, sweeps).")
    deferred_logging: bool = option(True, "Logging steps read the loss and gradient norm off the GPU one logging "
                                          "step later instead of waiting for it (training_logs.py); same logs.")
    ddp_gradient_dtype: str = option("float32", "Several GPUs under DDP: the dtype gradients are all-reduced in; "
                                                "bfloat16 or float16 send half the bytes (DDP's compression hooks).")
    cpu_threads: int = option(0, "Each process's intra-op CPU threads; 0: the cores this process may use, shared "
                                 "among this machine's training processes (torchrun otherwise sets 1 for several).")


def check_arguments(args: NextGPTArguments) -> None:
    if args.train_instruct:
        args.stage = 2
    if args.stage not in (1, 2):
        raise ValueError(f"--stage must be 1 or 2, got {args.stage}")
    if args.data_path is None:
        raise ValueError("--data_path is required")
    if args.model_name_or_path is None and not (args.llm and args.vision_tower):
        raise ValueError("Give --model_name_or_path, or --llm and --vision_tower to assemble a new model")
    if args.stage == 2 and args.model_name_or_path is None:
        raise ValueError("Stage 2 starts from a stage-1 output: give --model_name_or_path outputs/stage1/final")
    for name in ("model_name_or_path", "llm"):  # named here, rather than by the hub's "Repo id must be ..." error
        if getattr(args, name) and missing_local_folder(getattr(args, name)):
            raise ValueError(f"--{name} {getattr(args, name)}: no such folder")
    if (args.load_in_4bit or args.load_in_8bit) and args.stage == 1:
        raise ValueError("Stage 1 trains the projector only, and the Trainer refuses a quantized model without "
                         "adapters: drop --load_in_4bit/--load_in_8bit (with --bf16 the frozen LLM is kept in bf16)")
    if (args.load_in_4bit or args.load_in_8bit) and not torch.cuda.is_available():
        raise ValueError("--load_in_4bit/--load_in_8bit need a CUDA GPU (bitsandbytes)")
    if (args.load_in_4bit or args.load_in_8bit) and args.full_finetune:
        raise ValueError("A quantized LLM cannot be fully fine-tuned: use LoRA (drop --full_finetune)")
    for name in ("fused_kernels", "graphed_layers"):
        if getattr(args, name) not in ("auto", "true", "false"):
            raise ValueError(f"--{name} must be auto, true or false, got {getattr(args, name)}")
    if args.graph_bucket_tokens < 1:
        raise ValueError(f"--graph_bucket_tokens must be positive, got {args.graph_bucket_tokens}")
    if args.cpu_threads < 0:
        raise ValueError(f"--cpu_threads must be 0 (automatic) or more, got {args.cpu_threads}")
    if args.ddp_gradient_dtype not in DDP_GRADIENT_HOOKS:
        raise ValueError(f"--ddp_gradient_dtype must be one of {list(DDP_GRADIENT_HOOKS)}, "
                         f"got {args.ddp_gradient_dtype}")
    if args.model_dtype not in ("auto", *DTYPES):
        raise ValueError(f"--model_dtype must be one of {['auto', *DTYPES]}, got {args.model_dtype}")


def check_launch(training_args: TrainingArguments) -> None:
    """One process drives one GPU. With several visible and no launcher, the Trainer would wrap the model in torch's
    DataParallel, whose per-forward replicas hold no parameters of their own (the vision tower's dtype lookup raises
    StopIteration in them) and leave the graphed layers and fused kernels behind."""
    if training_args.n_gpu > 1:
        raise ValueError(f"{training_args.n_gpu} GPUs are visible to this one process: launch a process per GPU with "
                         f"`torchrun --nproc_per_node {training_args.n_gpu} train_hf.py ...` (or `accelerate launch`), "
                         "or train on one with CUDA_VISIBLE_DEVICES=0")


def cpu_threads(requested: int) -> int:
    """Intra-op CPU threads for this process: `requested`, or its usable cores divided among the machine's training
    processes, as one process has by default. torchrun sets OMP_NUM_THREADS=1 when it starts several; one thread made a
    lone process 10% slower, four ranks the same within their spread (benchmarks/RESULTS.md, "Four GPUs")."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return requested or max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def quantization_config(args: NextGPTArguments) -> BitsAndBytesConfig | None:
    if not (args.load_in_4bit or args.load_in_8bit):
        return None
    return BitsAndBytesConfig(
        load_in_4bit=args.load_in_4bit, load_in_8bit=args.load_in_8bit, bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16,
        llm_int8_skip_modules=["vision_tower", "audio_tower", "projector", "lm_head"],
    )


def frozen_weights_dtype(args: NextGPTArguments, training_args: TrainingArguments) -> torch.dtype:
    """`--model_dtype`, where `auto` is the training's compute dtype: frozen weights in float32 under bf16 autocast
    would only be cast down at every product."""
    if args.model_dtype != "auto":
        return DTYPES[args.model_dtype]
    return torch.bfloat16 if training_args.bf16 else torch.float16 if training_args.fp16 else torch.float32


def load_model(args: NextGPTArguments, dtype: torch.dtype) -> tuple[NextGPTForConditionalGeneration, NextGPTProcessor]:
    if args.model_name_or_path is None:
        return assemble_nextgpt(
            args.llm, args.vision_tower, args.image_mode, args.projector_type, args.llm_gguf_file, dtype,
            quantization_config=quantization_config(args), audio_tower=args.audio_tower,
        )
    model, info = NextGPTForConditionalGeneration.from_pretrained(
        args.model_name_or_path, dtype=dtype, quantization_config=quantization_config(args), output_loading_info=True
    )
    missing_projector = [key for key in info["missing_keys"] if key.startswith("projector.")]
    if missing_projector:
        raise ValueError(
            f"{args.model_name_or_path} holds no projector weights (missing: {missing_projector}); "
            "stage 2 must start from a stage-1 output folder"
        )
    return model, NextGPTProcessor.from_pretrained(args.model_name_or_path)


def configure_stage(model: NextGPTForConditionalGeneration, args: NextGPTArguments, gradient_checkpointing: bool):
    """Freeze and wrap for the stage; trainable weights are kept in float32 whatever the frozen weights' dtype."""
    if args.stage == 1 or args.full_finetune:
        model.set_trainable(projector=True, language_model=args.stage == 2)
    else:
        from peft import LoraConfig, get_peft_model

        # No peft `prepare_model_for_kbit_training`: it casts every unquantized weight to float32, which makes the
        # hidden states float32 and bitsandbytes' backward products float32 (several times slower than bf16).
        model.set_trainable(projector=False, language_model=False)
        if gradient_checkpointing:
            model.enable_input_require_grads()  # text-only batches have no trainable input otherwise
        targets = "|".join(name.strip() for name in args.lora_target_modules.split(","))
        # Every projector trains fully beside the LoRA (named, not left to peft's suffix match of "projector").
        projectors = [name for name in ("projector", "audio_projector") if hasattr(model, name)]
        model = get_peft_model(model, LoraConfig(
            r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
            target_modules=rf"language_model\..*\.({targets})", modules_to_save=projectors,
        ))
    for parameter in model.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.float()
    return model


def apply_fused_kernels(language_model: PreTrainedModel, args: NextGPTArguments,
                        training_args: TrainingArguments) -> bool:
    """Liger's kernels on the LLM, where `--fused_kernels` (or the Trainer's `--use_liger_kernel`) asks for them;
    returns whether they were applied. The Trainer's own flag reaches only the outer NextGPT model, which Liger does
    not know, so it would do nothing. Not under FSDP: the fused cross-entropy multiplies the hidden states by the
    output weights that FSDP2 hands out as DTensors, and fails (seen on H200s with liger-kernel 0.8.5)."""
    available = importlib.util.find_spec("liger_kernel") is not None
    wanted = args.fused_kernels == "true" or training_args.use_liger_kernel
    if training_args.fsdp:
        if wanted:
            raise ValueError("--fused_kernels true (or --use_liger_kernel) does not work under --fsdp: Liger's fused "
                             "cross-entropy cannot take FSDP's sharded output weights; leave it at auto")
        return False
    if wanted and not available:
        raise ValueError("--fused_kernels true needs liger-kernel (pip install 'nano-nextgpt[cuda]')")
    if not (wanted or (args.fused_kernels == "auto" and available and torch.cuda.is_available())):
        return False
    apply_liger_kernels(language_model)
    return True


def apply_liger_kernels(language_model: PreTrainedModel) -> None:
    """Liger's kernels on this model alone. Liger also swaps classes and the rotary function in the model's
    transformers module, which would hand its Triton kernels to every model of that type built later in the process
    (on the CPU they fail): the classes are put back (this model's modules are swapped already) and the rotary
    function, looked up at each call, runs Liger's kernel on CUDA tensors only."""
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    module = sys.modules[type(language_model).__module__]
    before = dict(vars(module))
    _apply_liger_kernel_to_instance(model=language_model)
    for name, original in before.items():
        swapped = getattr(module, name)
        if swapped is original:
            continue
        setattr(module, name, original if isinstance(original, type) else on_cuda_only(swapped, original))


def on_cuda_only(kernel: Callable, fallback: Callable) -> Callable:
    """`kernel` where the first argument is a CUDA tensor, `fallback` elsewhere."""
    @functools.wraps(fallback)
    def dispatch(*args, **kwargs):
        return (kernel if args[0].is_cuda else fallback)(*args, **kwargs)
    return dispatch


def graphed_layers_refusal(args: NextGPTArguments, training_args: TrainingArguments) -> str | None:
    """Why this run cannot replay its decoder layers from CUDA graphs, or None."""
    if not torch.cuda.is_available():
        return "they need a CUDA GPU"
    if not args.packing:
        return "they need packed batches (--packing)"
    if training_args.fsdp:
        return "FSDP gathers each layer's weights in its own launches"
    if training_args.gradient_checkpointing:
        return "gradient checkpointing runs each layer's forward again inside its backward"
    if args.load_in_4bit or args.load_in_8bit:
        return "bitsandbytes layers were not tested in CUDA graphs"
    if training_args.torch_compile:
        return "--torch_compile captures graphs of its own"
    return None


def install_graphed_layers(language_model: PreTrainedModel, args: NextGPTArguments,
                           training_args: TrainingArguments) -> GraphedDecoderLayers | None:
    """Graph replay on the LLM's decoder layers where `--graphed_layers` asks for it (auto: not for full fine-tuning,
    whose gradient buffers would be a copy of the LLM). Installed after LoRA, whose weights the graphs read."""
    refusal = graphed_layers_refusal(args, training_args)
    if args.graphed_layers == "false" or (args.graphed_layers == "auto" and (refusal or args.full_finetune)):
        return None
    if refusal:
        raise ValueError(f"--graphed_layers true does not work in this run: {refusal}")
    # auto: a capture that fails in some model or library version warns and leaves the layers eager; true: it raises.
    return graph_decoder_layers(language_model, bucket_tokens=args.graph_bucket_tokens,
                                strict=args.graphed_layers == "true")


def build_datasets(args, training_args, model, processor):
    datasets = {}
    for split, path in (("train", args.data_path), ("eval", args.eval_data_path)):
        if path is None:
            continue
        records = load_records(path, args.data_split if split == "train" else "validation")
        limit = args.max_train_samples if split == "train" else args.max_eval_samples
        examples, bad = prepare_examples(
            records[:limit], path, processor, args.image_folder, args.model_max_length, args.caption_prompt,
            args.skip_bad_records,
        )
        if bad:
            print(f"Skipped {len(bad)} bad records of {path}:\n  " + "\n  ".join(str(record) for record in bad))
        if not examples:
            raise ValueError(f"No usable records in {path}")
        datasets[split] = examples
    cache = None
    if args.cache_image_embeds:
        from embedding_cache import EmbeddingCache, tower_of  # datasets is needed only here

        media = {kind: [item for examples in datasets.values() for example in examples
                        for item in example.get(field, [])]
                 for kind, field, *_ in COLLATED_MEDIA}
        for kind, files in media.items():
            if files:
                tower_of(model, kind).to(training_args.device)
        with training_args.main_process_first(desc="embedding cache"):
            cache = EmbeddingCache.build(
                model, processor, media, args.embedding_cache_dir, args.embedding_batch_size, args.embedding_cache_dtype
            )
    return datasets, cache


def base_state_dict_without_lora(base: NextGPTForConditionalGeneration) -> dict[str, torch.Tensor]:
    """The state dict of a peft-wrapped model under its original key names: LoRA tensors dropped, wrapped layers'
    `base_layer` unwrapped, and the trained copy of each `modules_to_save` module (the projector) kept."""
    state = {}
    for key, tensor in base.state_dict().items():
        if "lora_" in key or ".original_module." in key:
            continue
        state[key.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".")] = tensor
    return state


def save_final(trainer: Trainer, processor: NextGPTProcessor, args: NextGPTArguments, *, dtype: torch.dtype,
               eval_metrics: dict | None = None) -> str:
    """Write `output_dir/final` atomically: everything goes to `final.partial`, which is renamed when complete.

    LoRA runs keep the adapter (with the trained projector) beside the base model, or merge it (`--merge_lora`).
    A quantized (QLoRA) run's base is saved in `dtype` (the frozen weights'), reloaded from `--model_name_or_path`.
    The model card is the starting folder's (or the assembled parts') with this run's record added."""
    final = final_folder(trainer.args.output_dir)
    partial = final + ".partial"
    if trainer.is_world_process_zero() and os.path.exists(partial):
        shutil.rmtree(partial)
    # Gathers sharded (FSDP) weights; for LoRA, writes the adapter. (Internal: no push of a half-written folder.)
    trainer.save_model(partial, _internal_call=True)
    model = trainer.model
    if trainer.is_world_process_zero():
        if hasattr(model, "peft_config"):
            if args.load_in_4bit or args.load_in_8bit:
                from peft import PeftModel

                base = NextGPTForConditionalGeneration.from_pretrained(args.model_name_or_path, dtype=dtype)
                model = PeftModel.from_pretrained(base, partial)
            if args.merge_lora:
                model.merge_and_unload().save_pretrained(partial)
                for name in ("adapter_config.json", "adapter_model.safetensors"):
                    os.remove(os.path.join(partial, name))
            else:  # the base model beside the adapter; the trained model in memory stays as it is
                base = model.get_base_model()
                base.save_pretrained(partial, state_dict=base_state_dict_without_lora(base))
        processor.save_pretrained(partial)
        card = (args.model_name_or_path and read_card_data(args.model_name_or_path)) or assembled_card_data(
            trainer.model.config, llm=args.llm or args.model_name_or_path, vision_tower=args.vision_tower or
            args.model_name_or_path)
        card["training"].append(training_record(args, trainer.args, trainer.state, eval_metrics))
        write_model_card(partial, card, title=os.path.basename(os.path.normpath(trainer.args.output_dir)))
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(partial, final)
    trainer.accelerator.wait_for_everyone()
    return final


class NextGPTTrainer(LoggingTrainer):
    """The transformers Trainer with training_logs.py's log entries and logging steps, whose checkpoints of a model
    with frozen parts (stage 1: all but the projector) hold only the weights that train: resuming loads them over the
    frozen weights the run starts from. (LoRA checkpoints hold only the adapter already; the final folder is always
    complete.)"""

    checkpointing = False

    def __init__(self, *args, ddp_gradient_dtype: str = "float32", **kwargs):
        self.ddp_gradient_hook = DDP_GRADIENT_HOOKS[ddp_gradient_dtype]
        super().__init__(*args, **kwargs)

    def _build_accelerator_args(self, **kwargs) -> dict:
        accelerator_args = super()._build_accelerator_args(**kwargs)
        for handler in accelerator_args.get("kwargs_handlers", []):
            if isinstance(handler, DistributedDataParallelKwargs):
                handler.comm_hook = self.ddp_gradient_hook
        return accelerator_args

    def _save_checkpoint(self, model, trial):
        self.checkpointing = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.checkpointing = False

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if self.checkpointing and state_dict is None and not hasattr(self.model, "peft_config"):
            trained = {name for name, parameter in self.model.named_parameters() if parameter.requires_grad}
            state_dict = {name: tensor for name, tensor in self.model.state_dict().items() if name in trained}
        super()._save(output_dir, state_dict)

    # What is worth pushing is output_dir/final, complete and with its model card, once training is done; the
    # Trainer's own pushes (each checkpoint, output_dir) would upload checkpoint files instead.
    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:
        self.hub_model_id = self.args.hub_model_id or os.path.basename(os.path.normpath(self.args.output_dir))

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        pass

    def push_to_hub(self, commit_message: str | None = "End of training", **kwargs):
        """Uploads output_dir/final (the model, its processor and card) to the repo of --hub_model_id."""
        if not self.is_world_process_zero():
            return None
        api = hf_api()
        repo_id = api.create_repo(self.hub_model_id, private=self.args.hub_private_repo, token=self.args.hub_token,
                                  exist_ok=True).repo_id
        return api.upload_folder(repo_id=repo_id, folder_path=final_folder(self.args.output_dir),
                                 commit_message=commit_message, token=self.args.hub_token)

    def _get_train_sampler(self, train_dataset=None):
        """batch_rebalance evens out padded cost across GPUs; packed micro-batches cost their tokens instead."""
        sampler = super()._get_train_sampler(train_dataset)
        if isinstance(sampler, BatchRebalanceSampler) and getattr(self.data_collator, "pack", False):
            return TokenBalancedSampler.like(sampler)
        return sampler

    def _issue_warnings_after_load(self, load_result) -> None:
        frozen = {name for name, parameter in self.model.named_parameters() if not parameter.requires_grad}
        expected = set(load_result.missing_keys) & frozen
        if expected:
            print(f"Checkpoint loaded: the trained weights from it, {len(expected)} frozen tensors from the base "
                  f"model", file=sys.stderr)
        super()._issue_warnings_after_load(load_result._replace(
            missing_keys=[key for key in load_result.missing_keys if key not in expected]))


def save_line_plot(lines: dict[str, list[tuple[float, float]]], path: str, xlabel: str, ylabel: str,
                   marked: tuple[str, ...] = ()) -> None:
    """One line per label, its (x, y) points; the labels in `marked` show each point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for label, points in lines.items():
        if points:
            axes.plot(*zip(*points), marker="." if label in marked else None, label=label)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_loss_curve(log_history: list[dict], path: str) -> None:
    lines = {label: [(entry["step"], entry[key]) for entry in log_history if key in entry]
             for key, label in (("loss", "train loss"), ("eval_loss", "eval loss"))}
    save_line_plot(lines, path, "step", "loss", marked=("eval loss",))


def train(argv: list[str] | None = None, callbacks: list[TrainerCallback] | None = None) -> Trainer:
    parser = HfArgumentParser((NextGPTArguments, TrainingArguments))
    # Batches (and images) are prepared while the GPU computes, by workers that live across epochs (starting them
    # again stalled the first step of each epoch: 1.1 s against 0.41 on the H100's stage 1); the loss is logged every
    # 1% of the steps, so that a short run prints and plots its loss too (the Trainer's default is every 500 steps).
    # The host does not wait for the GPU where it need not (after each wait the GPU sits idle until the host has
    # launched new work): batches are copied from pinned memory without waiting (accelerate waits for each tensor by
    # default), a NaN/Inf loss is logged as it is rather than left out of the average (a check that reads every
    # micro-batch's loss off the GPU), and DDP does not broadcast the model's buffers at every forward (a collective
    # waiting for the slowest rank, for buffers that training never changes: rotary frequencies, position ids).
    parser.set_defaults(dataloader_num_workers=2, dataloader_persistent_workers=True, logging_steps=0.01,
                        accelerator_config={"non_blocking": True}, logging_nan_inf_filter=False,
                        ddp_broadcast_buffers=False)
    args, training_args = parser.parse_args_into_dataclasses(argv)
    # torch refuses persistent workers without workers.
    training_args.dataloader_persistent_workers &= training_args.dataloader_num_workers > 0
    check_arguments(args)
    check_launch(training_args)
    torch.set_num_threads(cpu_threads(args.cpu_threads))
    resume = checkpoint_to_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    training_args.remove_unused_columns = False  # the collator needs the image paths
    set_seed(training_args.seed)

    dtype = frozen_weights_dtype(args, training_args)
    model, processor = load_model(args, dtype)
    language_model = model.language_model
    if args.packing:
        enable_packed_attention(language_model)
    fused = apply_fused_kernels(language_model, args, training_args)
    datasets, cache = build_datasets(args, training_args, model, processor)
    model = configure_stage(model, args, training_args.gradient_checkpointing)
    graphs = install_graphed_layers(language_model, args, training_args)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"Stage {args.stage}: {trainable:,} trainable parameters of {sum(p.numel() for p in model.parameters()):,}; "
          f"{'packed' if args.packing else 'padded'} batches, fused kernels {'on' if fused else 'off'}, decoder "
          f"layers {'graphed' if graphs else 'eager'}")

    trainer = NextGPTTrainer(
        model=model, args=training_args, train_dataset=datasets["train"], eval_dataset=datasets.get("eval"),
        data_collator=NextGPTCollator(processor, cache, pack=args.packing,
                                      pad_to_multiple_of=graphs.bucket_tokens if graphs else None),
        processing_class=processor,
        callbacks=[MarkCompleteCheckpoints(), *(callbacks or [])],
        ddp_gradient_dtype=args.ddp_gradient_dtype, deferred_logging=args.deferred_logging,
    )
    # The tokenized examples live until the end: a full collection walks them all (1.1 s for LLaVA's 558k captions,
    # measured), in the trainer and in each forked data loader worker, where it also copies their memory pages.
    # Unfrozen afterwards, so that a caller training again in this process can free this run's model.
    gc.freeze()
    # LoRA keeps float32 weights and peft casts each input to their dtype; under bf16/fp16 autocast the products run
    # in half precision anyway, so the cast only adds a float32 copy of every adapted layer's input.
    # The model checks that each batch's placeholders match its media by reading a count off the GPU, which stops the
    # host at every micro-batch (under DDP, until every rank's last step ended). These batches were checked when the
    # examples were tokenized, so transformers' switch for such checks is on while training.
    try:
        with disable_input_dtype_casting(model, active=training_args.bf16 or training_args.fp16), \
                patch.dict(os.environ, {"TRANSFORMERS_DISABLE_TORCH_CHECK": "1"}):
            trainer.train(resume_from_checkpoint=resume)
    finally:
        gc.unfreeze()
        if graphs is not None:  # evaluation and saving run the layers eagerly; the graphs' memory goes
            if trainer.is_world_process_zero():
                print(graphs.summary())
            graphs.remove()

    metrics = None
    if training_args.do_eval and "eval" in datasets:
        metrics = trainer.evaluate()
        if trainer.is_world_process_zero():
            from eval_vqa import evaluate_vqa

            vqa_metrics, _ = evaluate_vqa(
                trainer.model, processor, load_records(args.eval_data_path, "validation"), args.image_folder,
                args.vqa_eval_batch_size,
            )
            metrics.update({f"eval_vqa_{key}": value for key, value in vqa_metrics.items()})
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    final = save_final(trainer, processor, args, dtype=dtype, eval_metrics=metrics) if args.save_final else None
    if final and training_args.push_to_hub:
        trainer.push_to_hub()
    if trainer.is_world_process_zero():
        plot_loss_curve(trainer.state.log_history, os.path.join(training_args.output_dir, "loss_curve.png"))
        with open(os.path.join(training_args.output_dir, "log_history.json"), "w") as handle:
            json.dump(trainer.state.log_history, handle, indent=1)
        if final:
            print(f"Saved {final}")
    return trainer


def main() -> int:
    try:
        train()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if torch.distributed.is_initialized():  # else gloo/NCCL threads can abort the interpreter at exit
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
