"""Encode every training image (and audio file, and video) once with the frozen towers and keep the features on
disk, per file.

The towers never train, so their outputs are a pure function of (tower weights, preprocessing, file). Features live
in a folder per tower and kind (a fingerprint of its config, weights, preprocessing and the stored dtype), in tables
written by `datasets.map` and keyed by file (real path, size, modification time). A run encodes only the files no
earlier run has encoded: a second run reuses everything, and stage 2 after stage 1 encodes only the files that stage
1 did not see (a changed file is encoded again). What is stored is what the projector takes: an image's tower
features, a video's (its clips' mean embedding, or every clip's tokens), an audio file's mean joint embedding.
"""

import glob
import hashlib
import json
import os

import numpy as np
import torch
from datasets import Array2D, Dataset, Features, Value

import audio_features
import speech_embedding
import video_features
from modeling_nextgpt import NextGPTForConditionalGeneration
from processing_nextgpt import NextGPTProcessor


# Keys that saving or loading adds or changes without changing the features (the tower's dtype is described apart).
BOOKKEEPING_KEYS = {"dtype", "_name_or_path", "transformers_version", "auto_map", "processor_class", "architectures"}


def tower_fingerprint(model: NextGPTForConditionalGeneration, processor: NextGPTProcessor, dtype: str, *,
                      kind: str = "image") -> str:
    """What the features of `kind` depend on besides the file: the tower, its preprocessing, the stored dtype. The
    same for a model assembled from parts (stage 1) and for its saved folder loaded again (stage 2), so both share a
    cache. (Images keep the fingerprint they had before videos and audio were cached.)"""
    tower = tower_of(model, kind)
    checksum = sum(float(parameter.detach().double().sum()) for parameter in tower.parameters())
    if kind == "audio":
        # The speech encoder's clips are cut by speech_embedding.py to the processor's length, after audio_features.py
        # decodes the file.
        speech = processor.speech_clip_seconds is not None
        description = {"kind": kind, "audio_config": model.config.audio_config.to_dict(), "preprocessing_code": "".join(
            source_digest(module) for module in (audio_features, *([speech_embedding] if speech else [])))}
        if speech:
            description["speech_clip_seconds"] = processor.speech_clip_seconds
    else:
        description = {"vision_config": model.config.vision_config.to_dict(), "image_mode": model.config.image_mode,
                       "preprocessing": processor.image_processor.to_dict()}
        if kind == "video":
            description.update(kind=kind, preprocessing_code=source_digest(video_features))
    description.update(tower_checksum=repr(checksum), tower_dtype=str(next(tower.parameters()).dtype), dtype=dtype)
    for part in ("vision_config", "audio_config", "preprocessing"):
        if part in description:
            description[part] = {key: value for key, value in description[part].items() if key not in BOOKKEEPING_KEYS}
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:24]


def tower_of(model: NextGPTForConditionalGeneration, kind: str) -> torch.nn.Module:
    """The frozen tower that encodes files of `kind`: the audio branch, or the vision tower (images and videos)."""
    return model.audio_tower if kind == "audio" else model.vision_tower


def source_digest(module) -> str:
    """A preprocessing module's source, hashed: any change to how files become tower inputs makes a new cache."""
    with open(module.__file__, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def media_key(path: str) -> str:
    """A file as the cache knows it: its real path, size and modification time."""
    stat = os.stat(path)
    return f"{os.path.realpath(path)}|{stat.st_size}|{stat.st_mtime_ns}"


def feature_shape(model: NextGPTForConditionalGeneration, kind: str) -> tuple[int, int]:
    """(tokens, width) stored per file of `kind`: what `get_{kind}_features` hands the projector."""
    config = model.config
    if kind == "audio":
        return 1, config.audio_config.projection_dim
    return (config.num_video_tokens if kind == "video" else config.num_image_tokens), config.vision_feature_dim


def encoder(model: NextGPTForConditionalGeneration, processor: NextGPTProcessor, kind: str):
    """paths -> their features (files, tokens, width), through the frozen tower of `kind`."""
    device = next(tower_of(model, kind).parameters()).device
    if kind == "image":
        return lambda paths: model.encode_images(processor.preprocess_images(paths).to(device))
    if kind == "video":
        return lambda paths: model.get_video_features(processor.preprocess_videos(paths).to(device)).last_hidden_state
    return lambda paths: model.get_audio_features(processor.preprocess_audio(paths).to(device)).last_hidden_state


class EmbeddingCache:
    """Tower features of files, looked up by path and kind, from the tables of each kind's cache folder."""

    def __init__(self, tables: dict[str, list[Dataset]], key_of: dict[str, str] | None = None):
        """`tables`: per kind; `key_of`: the keys of paths already looked at (others are read from the file system)."""
        self.tables = {kind: [table.with_format("torch", columns=["embeds"]) for table in kind_tables]
                       for kind, kind_tables in tables.items()}
        self.row_of = {kind: {key: (index, row) for index, table in enumerate(kind_tables)
                              for row, key in enumerate(table["key"])} for kind, kind_tables in tables.items()}
        self.key_of = key_of or {}

    def holds(self, kind: str) -> bool:
        return kind in self.tables

    def lookup(self, paths: list[str], kind: str = "image") -> torch.Tensor:
        keys = [self.key_of.get(path) or media_key(path) for path in paths]
        row_of = self.row_of[kind]
        missing = [path for path, key in zip(paths, keys) if key not in row_of]
        if missing:
            raise KeyError(f"{kind} files not in the embedding cache (or changed since): {missing[:5]}")
        # One read per table rather than one per file: a row read costs ~0.3 ms, a stage-1 batch holds 256 images.
        places = [row_of[key] for key in keys]
        found = {}
        for index in {index for index, _ in places}:
            rows = sorted({row for table, row in places if table == index})
            for row, embeds in zip(rows, self.tables[kind][index][rows]["embeds"]):
                found[index, row] = embeds
        return torch.stack([found[place] for place in places]).float()

    @classmethod
    def build(
        cls,
        model: NextGPTForConditionalGeneration,
        processor: NextGPTProcessor,
        media: dict[str, list[str]],
        cache_dir: str,
        batch_size: int = 32,
        dtype: str = "float16",
    ) -> "EmbeddingCache":
        """The cache holding every file of `media` ({"image": paths, "video": paths, "audio": paths}; kinds without
        files are left out), encoding those no earlier run has encoded."""
        tables, key_of = {}, {}
        for kind, paths in media.items():
            if not paths:
                continue
            if not all(isinstance(path, str) for path in paths):
                raise ValueError(f"--cache_image_embeds needs {kind}s given as files (these records hold decoded "
                                 f"{kind}s)")
            keys = {path: media_key(path) for path in paths}
            key_of.update(keys)
            tables[kind] = cls._build_kind(model, processor, kind=kind, keys=keys, cache_dir=cache_dir,
                                            batch_size=batch_size, dtype=dtype)
        return cls(tables, key_of=key_of)

    @staticmethod
    def _build_kind(model, processor, *, kind: str, keys: dict[str, str], cache_dir: str, batch_size: int,
                    dtype: str) -> list[Dataset]:
        folder = os.path.join(cache_dir, f"{kind}_embeds-{tower_fingerprint(model, processor, dtype, kind=kind)}")
        tables = [Dataset.from_file(path) for path in sorted(glob.glob(os.path.join(folder, "*.arrow")))]
        known = {key for table in tables for key in table["key"]}
        missing = sorted({path for path, key in keys.items() if key not in known})
        shape = feature_shape(model, kind)
        if not missing:
            print(f"All {len(keys)} {kind} files are in the embedding cache {folder}")
            return tables
        size = len(missing) * shape[0] * shape[1] * np.dtype(dtype).itemsize
        print(f"Encoding {len(missing)} {kind} files ({len(keys) - len(missing)} already cached) into {folder}: about "
              f"{size / 2**20:.1f} MiB on disk")
        os.makedirs(folder, exist_ok=True)
        fingerprint = hashlib.sha256("\n".join(keys[path] for path in missing).encode()).hexdigest()[:24]
        encode = encoder(model, processor, kind)

        def encoded(batch: dict) -> dict:
            with torch.no_grad():
                return {"embeds": encode(batch["file"]).float().cpu().numpy().astype(dtype)}

        tables.append(Dataset.from_dict({"file": missing, "key": [keys[path] for path in missing]}).map(
            encoded,
            batched=True,
            batch_size=batch_size,
            cache_file_name=os.path.join(folder, f"{fingerprint}.arrow"),
            new_fingerprint=fingerprint,
            load_from_cache_file=True,
            features=Features({"file": Value("string"), "key": Value("string"), "embeds": Array2D(shape, dtype)}),
            desc=f"Encoding {kind} files",
        ))
        return tables
