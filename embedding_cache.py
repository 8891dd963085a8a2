"""Encode every training image once with the frozen tower and keep the features on disk, per image file.

The tower never trains, so its outputs are a pure function of (tower weights, preprocessing, image file). Features
live in a folder per tower (a fingerprint of its config, weights, preprocessing and the stored dtype), in tables
written by `datasets.map` and keyed by image file (real path, size, modification time). A run encodes only the
images no earlier run has encoded: a second run reuses everything, and stage 2 after stage 1 encodes only the images
that stage 1 did not see (a changed file is encoded again)."""

import glob
import hashlib
import json
import os

import numpy as np
import torch
from datasets import Array2D, Dataset, Features, Value

from modeling_nextgpt import NextGPTForConditionalGeneration
from processing_nextgpt import NextGPTProcessor


# Keys that saving or loading adds or changes without changing the features (the tower's dtype is described apart).
BOOKKEEPING_KEYS = {"dtype", "_name_or_path", "transformers_version", "auto_map", "processor_class", "architectures"}


def tower_fingerprint(model: NextGPTForConditionalGeneration, processor: NextGPTProcessor, dtype: str) -> str:
    """What the features depend on besides the image: the tower, its preprocessing, the stored dtype. The same for a
    model assembled from parts (stage 1) and for its saved folder loaded again (stage 2), so both share a cache."""
    tower = model.vision_tower
    checksum = sum(float(parameter.detach().double().sum()) for parameter in tower.parameters())
    description = {
        "vision_config": model.config.vision_config.to_dict(),
        "image_mode": model.config.image_mode,
        "tower_checksum": repr(checksum),
        "tower_dtype": str(next(tower.parameters()).dtype),
        "preprocessing": processor.image_processor.to_dict(),
        "dtype": dtype,
    }
    for part in ("vision_config", "preprocessing"):
        description[part] = {key: value for key, value in description[part].items() if key not in BOOKKEEPING_KEYS}
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:24]


def image_key(path: str) -> str:
    """An image file as the cache knows it: its real path, size and modification time."""
    stat = os.stat(path)
    return f"{os.path.realpath(path)}|{stat.st_size}|{stat.st_mtime_ns}"


class EmbeddingCache:
    """Tower features of image files, looked up by path, from one or more tables of a tower's cache folder."""

    def __init__(self, tables: list[Dataset], key_of: dict[str, str] | None = None):
        """`key_of`: the image keys of paths already looked at (others are read from the file system)."""
        self.tables = [table.with_format("torch", columns=["embeds"]) for table in tables]
        self.row_of = {key: (index, row) for index, table in enumerate(tables) for row, key in enumerate(table["key"])}
        self.key_of = key_of or {}

    def lookup(self, paths: list[str]) -> torch.Tensor:
        keys = [self.key_of.get(path) or image_key(path) for path in paths]
        missing = [path for path, key in zip(paths, keys) if key not in self.row_of]
        if missing:
            raise KeyError(f"images not in the embedding cache (or changed since): {missing[:5]}")
        # One read per table rather than one per image: a row read costs ~0.3 ms, a stage-1 batch holds 256 images.
        places = [self.row_of[key] for key in keys]
        found = {}
        for index in {index for index, _ in places}:
            rows = sorted({row for table, row in places if table == index})
            for row, embeds in zip(rows, self.tables[index][rows]["embeds"]):
                found[index, row] = embeds
        return torch.stack([found[place] for place in places]).float()

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
        """The cache holding every image of `image_paths`, encoding those no earlier run has encoded."""
        if not all(isinstance(path, str) for path in image_paths):
            raise ValueError("--cache_image_embeds needs images given as files (these records hold decoded images)")
        folder = os.path.join(cache_dir, f"image_embeds-{tower_fingerprint(model, processor, dtype)}")
        tables = [Dataset.from_file(path) for path in sorted(glob.glob(os.path.join(folder, "*.arrow")))]
        known = {key for table in tables for key in table["key"]}
        keys = {path: image_key(path) for path in image_paths}
        missing = sorted({path for path, key in keys.items() if key not in known})
        shape = (model.config.num_image_tokens, model.config.vision_feature_dim)
        if not missing:
            print(f"All {len(keys)} images are in the embedding cache {folder}")
        else:
            size = len(missing) * shape[0] * shape[1] * np.dtype(dtype).itemsize
            print(f"Encoding {len(missing)} images ({len(keys) - len(missing)} already cached) into {folder}: about "
                  f"{size / 2**20:.1f} MiB on disk")
            os.makedirs(folder, exist_ok=True)
            fingerprint = hashlib.sha256("\n".join(keys[path] for path in missing).encode()).hexdigest()[:24]
            device = next(model.vision_tower.parameters()).device

            def encode(batch: dict) -> dict:
                pixel_values = processor.preprocess_images(batch["image"]).to(device)
                return {"embeds": model.encode_images(pixel_values).float().cpu().numpy().astype(dtype)}

            tables.append(Dataset.from_dict({"image": missing, "key": [keys[path] for path in missing]}).map(
                encode,
                batched=True,
                batch_size=batch_size,
                cache_file_name=os.path.join(folder, f"{fingerprint}.arrow"),
                new_fingerprint=fingerprint,
                load_from_cache_file=True,
                features=Features({"image": Value("string"), "key": Value("string"), "embeds": Array2D(shape, dtype)}),
                desc="Encoding images",
            ))
        return cls(tables, key_of=keys)
