"""The model card (README.md with Hub metadata) written beside every NextGPT folder this repository saves.

An assembled model's card names its parts (the LLM, the tower) and their licences; each training stage adds a
record (data, method, hyperparameters, steps, losses, evaluation) to the card of the folder it started from, so a
stage-2 card tells the whole recipe. The metadata (`pipeline_tag: image-text-to-text`, `library_name:
transformers`, `base_model`, `license`, `datasets`) is what the Hub reads to show a widget, a usage snippet and a
licence; the records are kept machine-readable under `nextgpt`.
"""

import os

from huggingface_hub import ModelCard, ModelCardData, try_to_load_from_cache

TOWER_LICENCES = {"imagebind_vision": "cc-by-nc-sa-4.0", "efficientnet_lite": "apache-2.0"}
TOWER_NAMES = {"imagebind_vision": "ImageBind's vision branch", "efficientnet_lite": "EfficientNet-Lite0"}
CARD = "README.md"


def source_licence(source: str) -> str | None:
    """The licence a model's own card declares: a folder's README.md, or a hub id's card if it is in the local
    cache (the Hub itself is never asked). None when unknown."""
    path = os.path.join(source, CARD) if os.path.isdir(source) else try_to_load_from_cache(source, CARD)
    if not isinstance(path, str) or not os.path.isfile(path):
        return None
    return ModelCard.load(path).data.license


def assembled_card_data(config, *, llm: str, vision_tower: str, llm_licence: str | None = None) -> dict:
    """What a card records about a freshly assembled model: its parts, where they came from, their licences."""
    tower_type = config.vision_config.model_type
    return {
        "parts": {
            "llm": {"source": llm, "model_type": config.text_config.model_type,
                    "licence": llm_licence or source_licence(llm)},
            "vision_tower": {"source": vision_tower, "model_type": tower_type,
                             "licence": TOWER_LICENCES.get(tower_type) or source_licence(vision_tower)},
        },
        "image_mode": config.image_mode, "projector_type": config.projector_type,
        "num_image_tokens": config.num_image_tokens, "training": [],
    }


def read_card_data(folder: str) -> dict | None:
    """The `nextgpt` record of the card in `folder`, if it has one."""
    path = os.path.join(folder, CARD)
    if not os.path.isfile(path):
        return None
    return ModelCard.load(path).data.to_dict().get("nextgpt")


def write_model_card(folder: str, nextgpt: dict, title: str | None = None) -> str:
    """Writes `folder`/README.md from a `nextgpt` record (`assembled_card_data`, plus training records)."""
    parts = nextgpt["parts"]
    licences = {part["licence"] for part in parts.values()}
    known = None not in licences
    licence = licences.pop() if known and len(licences) == 1 else "other"
    datasets = sorted({data for record in nextgpt["training"] for data in record.get("data", [])
                       if data and not os.path.exists(data)})  # hub dataset ids only, not local paths
    data = ModelCardData(
        library_name="transformers", pipeline_tag="image-text-to-text", license=licence,
        base_model=[part["source"] for part in parts.values() if not os.path.exists(part["source"])] or None,
        datasets=datasets or None, tags=["nextgpt", "vision-language", "custom_code"], nextgpt=nextgpt,
    )
    title = title or os.path.basename(os.path.normpath(folder))
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{card_body(title, nextgpt)}")
    card.save(os.path.join(folder, CARD))
    return os.path.join(folder, CARD)


def card_body(title: str, nextgpt: dict) -> str:
    parts = nextgpt["parts"]
    tower, llm = parts["vision_tower"], parts["llm"]
    tower_name = TOWER_NAMES.get(tower["model_type"], tower["model_type"])
    lines = [
        f"# {title}",
        "",
        f"A nano-NextGPT vision-language model: {tower_name} (frozen) encodes each image, a "
        f"`{nextgpt['projector_type']}` projector turns it into {nextgpt['num_image_tokens']} token(s) of the "
        f"language model ({llm['model_type']}, from `{llm['source']}`), which answers about it.",
        "",
        "## Usage",
        "",
        "```python",
        "from transformers import AutoModel, AutoProcessor, pipeline",
        "",
        'model = AutoModel.from_pretrained("THIS_FOLDER_OR_ID", trust_remote_code=True)',
        'processor = AutoProcessor.from_pretrained("THIS_FOLDER_OR_ID", trust_remote_code=True)',
        'messages = [{"role": "user", "content": [{"type": "image", "path": "photo.jpg"},',
        '                                         {"type": "text", "text": "What is in the image?"}]}]',
        "inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, "
        'return_dict=True, return_tensors="pt")',
        'answer = model.generate(**inputs, max_new_tokens=64)[0, inputs["input_ids"].shape[1]:]',
        "print(processor.decode(answer, skip_special_tokens=True))",
        "",
        'vqa = pipeline("visual-question-answering", model="THIS_FOLDER_OR_ID", trust_remote_code=True)',
        "```",
        "",
        "## Parts and licences",
        "",
        "| part | source | licence |",
        "|---|---|---|",
        f"| language model | `{llm['source']}` | {llm['licence'] or 'see its own card'} |",
        f"| vision tower | `{tower['source']}` | {tower['licence'] or 'see its own card'} |",
        "| projector, code | nano-NextGPT | apache-2.0 (code); the weights inherit the parts' terms |",
        "",
    ]
    if tower["licence"] == "cc-by-nc-sa-4.0":
        lines += ["ImageBind's weights are CC BY-NC-SA 4.0: this model may not be used commercially.", ""]
    lines += ["## Training", ""]
    if not nextgpt["training"]:
        lines += ["None yet: the projector is freshly initialised (train stage 1 with `train_hf.py`).", ""]
    for record in nextgpt["training"]:
        lines += [f"### Stage {record['stage']}: {record['method']}", ""]
        lines += [f"- {name.replace('_', ' ')}: {value}" for name, value in record.items()
                  if name not in ("stage", "method", "hyperparameters", "eval")]
        lines += [f"- {name}: {value}" for name, value in record.get("hyperparameters", {}).items()]
        if record.get("eval"):
            lines += ["", "| evaluation | value |", "|---|---|"]
            lines += [f"| {name} | {value:.4g} |" if isinstance(value, float) else f"| {name} | {value} |"
                      for name, value in record["eval"].items()]
        lines.append("")
    return "\n".join(lines)


def training_record(args, training_args, state, eval_metrics: dict | None) -> dict:
    """What one `train_hf.py` run adds to a card: its data, method, main hyperparameters, steps and losses."""
    if args.stage == 1:
        method = "projector only"
    elif args.full_finetune:
        method = "full fine-tuning"
    else:
        method = ("QLoRA 4-bit" if args.load_in_4bit else "LoRA 8-bit" if args.load_in_8bit else "LoRA") + (
            ", merged" if args.merge_lora else ", adapter beside the base model")
    losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    world = max(training_args.world_size, 1)
    record = {
        "stage": args.stage, "method": method, "base": args.model_name_or_path or f"{args.llm} + {args.vision_tower}",
        "data": [path for path in (args.data_path, args.eval_data_path) if path],
        "steps": state.global_step, "final_train_loss": round(losses[-1], 4) if losses else None,
        "hyperparameters": {
            "learning_rate": training_args.learning_rate,
            **({"max_steps": training_args.max_steps} if training_args.max_steps > 0
               else {"epochs": training_args.num_train_epochs}),
            "global_batch": training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
            * world, "model_max_length": args.model_max_length, "packing": args.packing, "seed": training_args.seed,
            **({"lora_r": args.lora_r, "lora_alpha": args.lora_alpha, "lora_dropout": args.lora_dropout,
                "lora_target_modules": args.lora_target_modules}
               if args.stage == 2 and not args.full_finetune else {}),
        },
    }
    if eval_metrics:
        record["eval"] = {name: value for name, value in eval_metrics.items() if isinstance(value, (int, float))}
    return record


__all__ = ["assembled_card_data", "read_card_data", "source_licence", "training_record", "write_model_card"]
