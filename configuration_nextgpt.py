"""NextGPT configuration: a frozen vision tower, a projector and a causal language model."""

import math
from typing import Literal

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

try:
    from .video_features import VIDEO_CLIPS
except ImportError:
    from video_features import VIDEO_CLIPS


class ImageBindVisionConfig(PreTrainedConfig):
    """The vision branch of ImageBind. The defaults are `imagebind_huge` (ViT-H/14, 257 tokens at 224 px)."""

    model_type = "imagebind_vision"

    hidden_size: int = 1280
    num_hidden_layers: int = 32
    num_attention_heads: int = 16
    mlp_ratio: int = 4
    patch_size: int = 14
    image_size: int = 224
    num_frames: int = 2  # ImageBind treats an image as a 2-frame clip (its stem is a 2x14x14 Conv3d)
    projection_dim: int = 1024  # the joint ImageBind embedding space
    layer_norm_eps: float = 1e-6
    initializer_range: float = 0.02


class ImageBindAudioConfig(PreTrainedConfig):
    """The audio branch of ImageBind. The defaults are `imagebind_huge`'s: a 128-bin log-mel spectrogram of a 2-second
    clip (204 frames) cut by a 16x16 convolution of stride 10 into 12 x 19 patches, 229 tokens with the CLS token."""

    model_type = "imagebind_audio"

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    mlp_ratio: int = 4
    num_mel_bins: int = 128
    target_length: int = 204  # spectrogram frames: 2 s at a 10 ms hop
    patch_size: int = 16
    patch_stride: int = 10
    projection_dim: int = 1024  # the joint ImageBind embedding space
    logit_scale: float = 20.0  # Meta's fixed scale on the normalised audio embedding
    add_bias_kv: bool = True  # its attention appends a learned key and value to every sequence
    layer_norm_eps: float = 1e-6
    stem_norm_eps: float = 1e-5  # the LayerNorm after the patch convolution keeps torch's default
    initializer_range: float = 0.02

    @property
    def num_patches(self) -> tuple[int, int]:
        """(frequency, time) patches of one spectrogram."""
        return tuple((size - self.patch_size) // self.patch_stride + 1
                     for size in (self.num_mel_bins, self.target_length))


class SpeechEmbeddingConfig(PreTrainedConfig):
    """Google's keyword-spotting speech encoder (speech_embedding.py, the weights of openwakeword 0.4.0) as the audio
    tower: a clip of `clip_seconds` at 16 kHz (cut or padded with silence to that length) gives a 96-d embedding
    every 80 ms, and a clip becomes one token, their mean."""

    model_type = "speech_embedding"

    projection_dim: int = 96  # the embedding's width, what the projector takes
    clip_seconds: float = 2.0
    initializer_range: float = 0.02


STEM_CHANNELS = 32  # EfficientNet-Lite0's first convolution


class EfficientNetLiteConfig(PreTrainedConfig):
    """EfficientNet-Lite0 (ImageNet), the small offline tower: a 7x7x1280 feature map at 224 px.

    stem_features: each token also carries the stem's 32 channels (the first convolution) averaged over its cell.
        The ImageNet-trained depth keeps colour poorly where the stem keeps it (benchmarks/EASY_VQA.md).
    stem_max_features: each token also carries the stem's 32 channels' maximum over its cell: a shape covering a
        corner of a cell, or a thin one, still gives its colour's full response there, where the mean mixes it with
        the background.
    """

    model_type = "efficientnet_lite"

    hidden_size: int = 1280
    image_size: int = 224
    batch_norm_eps: float = 1e-3
    num_classes: int = 1000
    initializer_range: float = 0.02
    stem_features: bool = False
    stem_max_features: bool = False

    @property
    def feature_size(self) -> int:
        """Width of one token: the head's channels, plus the stem's for each of its poolings asked for."""
        return self.hidden_size + STEM_CHANNELS * (self.stem_features + self.stem_max_features)


for _tower_config in (ImageBindVisionConfig, ImageBindAudioConfig, SpeechEmbeddingConfig, EfficientNetLiteConfig):
    AutoConfig.register(_tower_config.model_type, _tower_config, exist_ok=True)

# Towers that put a CLS token in front of their patch tokens (counted by `NextGPTConfig.num_image_tokens`).
TOWERS_WITH_CLS_TOKEN = {"imagebind_vision", "clip_vision_model", "dinov2"}
# Total stride of convolutional towers: their patch tokens are the cells of the final feature map.
CONV_TOWER_STRIDE = {"efficientnet_lite": 32}

NEXTGPT_AUTO_MAP = {
    "AutoConfig": "configuration_nextgpt.NextGPTConfig",
    "AutoModel": "modeling_nextgpt.NextGPTForConditionalGeneration",
    "AutoModelForImageTextToText": "modeling_nextgpt.NextGPTForConditionalGeneration",
}
NEXTGPT_PIPELINES = {
    "visual-question-answering": {
        "impl": "pipeline_nextgpt.NextGPTVisualQuestionAnsweringPipeline",
        "pt": ["AutoModel"],
        "type": "multimodal",
    }
}


VIDEO_TOWER = "imagebind_vision"  # the tower whose stem takes frame pairs: the one that takes videos


class NextGPTConfig(PreTrainedConfig):
    r"""
    Configuration of [`NextGPTForConditionalGeneration`]. `NextGPTConfig()` describes the original model:
    ImageBind-huge's 1024-d joint embedding, one linear layer, one soft token per image, Llama-2-7b-chat.

    Args:
        vision_config: the tower; `imagebind_vision`, `efficientnet_lite` or any transformers vision model config
            (CLIP, SigLIP, DINOv2, ...). A dict is resolved through its `model_type`.
        text_config: any causal language model config, resolved through `AutoConfig`.
        image_mode: `"embedding"` gives the LLM one token per image (the tower's pooled/joint embedding, as NextGPT);
            `"patches"` gives it every patch token of the tower (as LLaVA).
        projector_type: `"linear"` (NextGPT) or `"mlp2x_gelu"` (LLaVA-1.5).
        image_token_id: the placeholder id that the processor writes where image tokens go. It may lie past the LLM's
            vocabulary: placeholders are replaced before the embedding lookup, so no embedding row is needed.
        audio_config: ImageBind's audio branch (`imagebind_audio`), Google's speech encoder (`speech_embedding`, the
            offline one), or None (the default) for a model without audio. An audio clip becomes one token: the mean
            of its clips' joint embeddings (ImageBind, as in NExT-GPT) or of its 80 ms windows' embeddings.
        audio_token_id: the placeholder id of an audio token (needed with `audio_config`).
        share_projector: audio goes through the image projector (NExT-GPT: both are ImageBind joint embeddings of
            the same width, which needs `image_mode="embedding"` with an ImageBind tower), or through its own.
        video_token_id: the placeholder id of a video token, for a model whose tower is ImageBind's vision branch
            (its stem takes frame pairs; `video_features.py`); None takes no video. A video goes through the image
            tower and projector: one token (its clips' mean embedding) in embedding mode, every clip's tokens in
            patch mode (`num_video_tokens`).
    """

    model_type = "nextgpt"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="imagebind_vision"),
        "text_config": SubConfigSpec(
            config_class=AutoConfig,
            model_type="llama",
            init_kwargs={"max_position_embeddings": 4096, "rms_norm_eps": 1e-5},  # Llama-2-7b-chat
        ),
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="imagebind_audio", optional=True),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    image_mode: Literal["embedding", "patches"] = "embedding"
    projector_type: Literal["linear", "mlp2x_gelu"] = "linear"
    image_token_id: int = 32000
    audio_config: dict | PreTrainedConfig | None = None
    audio_token_id: int | None = None
    share_projector: bool = True
    video_token_id: int | None = None
    tie_word_embeddings: bool = False
    auto_map: dict | None = None
    custom_pipelines: dict | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.image_mode not in ("embedding", "patches"):
            raise ValueError(f"image_mode must be 'embedding' or 'patches', got {self.image_mode!r}")
        if self.projector_type not in ("linear", "mlp2x_gelu"):
            raise ValueError(f"projector_type must be 'linear' or 'mlp2x_gelu', got {self.projector_type!r}")
        if self.audio_config is not None:
            if self.audio_token_id is None or self.audio_token_id == self.image_token_id:
                raise ValueError(f"a model with audio needs an audio_token_id other than the image_token_id "
                                 f"({self.image_token_id}), got {self.audio_token_id}")
            if self.share_projector and self.audio_config.projection_dim != self.vision_feature_dim:
                raise ValueError(f"share_projector needs audio features as wide as image features: the audio branch "
                                 f"gives {self.audio_config.projection_dim}, the tower {self.vision_feature_dim} "
                                 "(image_mode='embedding' with an ImageBind tower matches; else share_projector=False)")
        if self.video_token_id is not None:
            if self.video_token_id in (self.image_token_id, self.audio_token_id):
                raise ValueError(f"the video_token_id ({self.video_token_id}) must differ from the image and audio "
                                 "token ids")
            if self.vision_config.model_type != VIDEO_TOWER:
                raise ValueError(f"video needs ImageBind's vision branch as the tower (its stem takes frame pairs), "
                                 f"not {self.vision_config.model_type}")
        self.tie_word_embeddings = self.tie_word_embeddings or self.text_config.tie_word_embeddings
        self.auto_map = {**NEXTGPT_AUTO_MAP, **(self.auto_map or {})}
        self.custom_pipelines = {**NEXTGPT_PIPELINES, **(self.custom_pipelines or {})}

    @property
    def vision_feature_dim(self) -> int:
        """Width of what the tower hands the projector: the joint embedding, or one patch token."""
        token_width = getattr(self.vision_config, "feature_size", None) or self.vision_config.hidden_size
        if self.image_mode == "embedding":
            return getattr(self.vision_config, "projection_dim", None) or token_width
        return token_width

    @property
    def context_length(self) -> int | None:
        """How many positions the LLM takes (prompt, image tokens and answer together), where its config says."""
        return getattr(self.text_config, "max_position_embeddings", None)

    def check_fits(self, prompt_length: int, max_new_tokens: int, limit: int | None = None) -> None:
        """Raises ValueError when a prompt and its new tokens pass the context (or a smaller `limit`, such as a
        server's cache): the one length check of generation, the CLI and the server."""
        limit = min(filter(None, (limit, self.context_length)), default=None)
        if limit and prompt_length + max_new_tokens > limit:
            raise ValueError(f"the prompt is {prompt_length} tokens and {max_new_tokens} new tokens are asked for: "
                             f"together {prompt_length + max_new_tokens}, past the {limit} positions available")

    @property
    def num_image_tokens(self) -> int:
        """How many LLM positions one image takes."""
        if self.image_mode == "embedding":
            return 1
        vision = self.vision_config
        if vision.model_type in CONV_TOWER_STRIDE:
            return math.ceil(vision.image_size / CONV_TOWER_STRIDE[vision.model_type]) ** 2
        grid = (vision.image_size // vision.patch_size) ** 2
        return grid + (1 if vision.model_type in TOWERS_WITH_CLS_TOKEN else 0)


    @property
    def num_video_tokens(self) -> int:
        """How many LLM positions one video takes: its clips' mean embedding, or every clip's image tokens."""
        return 1 if self.image_mode == "embedding" else VIDEO_CLIPS * self.num_image_tokens


NextGPTConfig.register_for_auto_class()
# Registered locally too, so that loading a saved folder from this repository never asks to trust remote code.
AutoConfig.register(NextGPTConfig.model_type, NextGPTConfig, exist_ok=True)

__all__ = ["VIDEO_TOWER", "NextGPTConfig", "ImageBindVisionConfig", "ImageBindAudioConfig", "SpeechEmbeddingConfig",
           "EfficientNetLiteConfig"]
