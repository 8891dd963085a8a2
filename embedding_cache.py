"""Encode every training image once with the frozen tower and keep the features on disk.

The tower never trains, so its outputs are a pure function of (tower weights, preprocessing, image file). They are
computed with `datasets.map` under a fingerprint of exactly those, so a second run, or stage 2 after stage 1, reuses
the file instead of running ImageBind again."""

import hashlib
import json
import os

import numpy as np
import torch
from datasets import Array2D, Dataset, Features, Value

from modeling_nextgpt import NextGPTForConditionalGeneration
from processing_nextgpt import NextGPTProcessor

def cache_fingerprint(
    model: NextGPTForConditionalGeneration, processor: NextGPTProcessor, paths: list[str], dtype: str
) -> str:
    tower = model.vision_tower
    checksum = sum(float(parameter.detach().double().sum()) for parameter in tower.parameters())
    files = [(path, os.path.getsize(path), os.path.getmtime(path)) for path in paths]
    description = {
        "vision_config": model.config.vision_config.to_dict(),
        "image_mode": model.config.image_mode,
        "tower_checksum": repr(checksum),
        "tower_dtype": str(next(tower.parameters()).dtype),
        "preprocessing": processor.image_processor.to_dict(),
        "files": files,
        "dtype": dtype,
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:24]


class EmbeddingCache:
    """Tower features of a fixed set of image files, looked up by path."""

    def __init__(self, table: Dataset):
        self.table = table.with_format("torch", columns=["embeds"])
        self.row_of = {path: row for row, path in enumerate(table["image"])}

    def lookup(self, paths: list[str]) -> torch.Tensor:
        missing = [path for path in paths if path not in self.row_of]
        if missing:
            raise KeyError(f"images not in the embedding cache: {missing[:5]}")
        return torch.stack([self.table[self.row_of[path]]["embeds"] for path in paths]).float()

    @classmethod
    def build(
        cls,
        model: NextGPTForConditionalGeneration,
        processor: NextGPTProcessor,
        image_paths: list[str],
        cache_dir: str,
        batch_size: int = 32,
        dtype: str = "float16",
    ) -> "EmbeddingCache":
        if not all(isinstance(path, str) for path in image_paths):
            raise ValueError("--cache_image_embeds needs images given as files (these records hold decoded images)")
        paths = sorted(set(image_paths))
        fingerprint = cache_fingerprint(model, processor, paths, dtype)
        cache_file = os.path.join(cache_dir, f"image_embeds-{fingerprint}.arrow")
        shape = (model.config.num_image_tokens, model.config.vision_feature_dim)
        if os.path.isfile(cache_file):
            print(f"Reusing the image embedding cache {cache_file}")
        else:
            size = len(paths) * shape[0] * shape[1] * np.dtype(dtype).itemsize
            print(f"Encoding {len(paths)} images into {cache_file}: about {size / 2**20:.1f} MiB on disk")
            os.makedirs(cache_dir, exist_ok=True)
        device = next(model.vision_tower.parameters()).device

        def encode(batch: dict) -> dict:
            pixel_values = processor.preprocess_images(batch["image"]).to(device)
            return {"embeds": model.encode_images(pixel_values).float().cpu().numpy().astype(dtype)}

        table = Dataset.from_dict({"image": paths}).map(
            encode,
            batched=True,
            batch_size=batch_size,
            cache_file_name=cache_file,
            new_fingerprint=fingerprint,
            load_from_cache_file=True,
            features=Features({"image": Value("string"), "embeds": Array2D(shape, dtype)}),
            desc="Encoding images",
        )
        return cls(table)
