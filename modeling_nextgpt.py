"""NextGPT for images and text: a frozen vision tower, a projector into the LLM's embedding space, and a causal LLM."""

import copy

import torch
from torch import nn
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    GenerationMixin,
    PreTrainedModel,
)
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache
from transformers.modeling_outputs import BaseModelOutputWithPooling, MultimodalCausalLMOutputWithPast
from transformers.utils import can_return_tuple, logging, torch_compilable_check

try:
    from .configuration_nextgpt import VIDEO_TOWER, NextGPTConfig
    from .fast_generation import FastGenerator
    from .imagebind_audio import ImageBindAudioModel
    from .speech_embedding import SpeechEmbeddingModel
    # Imported so that save_pretrained ships the pipeline file with the model (config.custom_pipelines points to it).
    from .pipeline_nextgpt import NextGPTVisualQuestionAnsweringPipeline  # noqa: F401
    from .vision_tower import NextGPTVisionTower
except ImportError:
    from configuration_nextgpt import VIDEO_TOWER, NextGPTConfig
    from fast_generation import FastGenerator
    from imagebind_audio import ImageBindAudioModel
    from speech_embedding import SpeechEmbeddingModel
    from pipeline_nextgpt import NextGPTVisualQuestionAnsweringPipeline  # noqa: F401
    from vision_tower import NextGPTVisionTower


logger = logging.get_logger(__name__)

# The audio towers, by their config's model_type.
AUDIO_TOWERS = {tower.config_class.model_type: tower for tower in (ImageBindAudioModel, SpeechEmbeddingModel)}


class NextGPTProjector(nn.Module):
    """Maps tower features into the LLM's embedding space: one Linear (NextGPT) or Linear-GELU-Linear (LLaVA-1.5)."""

    def __init__(self, config: NextGPTConfig, input_width: int | None = None):
        super().__init__()
        text_width = config.text_config.hidden_size
        self.linear_1 = nn.Linear(input_width or config.vision_feature_dim, text_width)
        if config.projector_type == "mlp2x_gelu":
            self.act = ACT2FN["gelu"]
            self.linear_2 = nn.Linear(text_width, text_width)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        hidden_states = self.linear_1(image_features)
        if hasattr(self, "linear_2"):
            hidden_states = self.linear_2(self.act(hidden_states))
        return hidden_states


def merge_features(
    input_ids: torch.LongTensor, inputs_embeds: torch.Tensor, features: torch.Tensor, token_id: int, kind: str = "image"
) -> torch.Tensor:
    """Write the projected tokens of each image (or audio clip: `kind`), in order, over the placeholder positions
    (`token_id`) of `inputs_embeds`.

    `features` is (num_items, tokens_per_item, width) for all items of the batch, in reading order.
    """
    placeholders = input_ids == token_id
    tokens_per_item = features.shape[1]

    def mismatch() -> str:
        found = int(placeholders.sum())
        return (f"The text has {found} {kind} placeholder tokens ({found / tokens_per_item:g} {kind}s of "
                f"{tokens_per_item} tokens) but {features.shape[0]} {kind}s were given")

    # Reading the count stops the host until the GPU catches up; transformers' switch for such checks
    # (TRANSFORMERS_DISABLE_TORCH_CHECK=1) skips it where the inputs were checked before, as train_hf.py's are.
    torch_compilable_check(placeholders.sum() == features.shape[0] * tokens_per_item, mismatch)
    features = features.reshape(-1, features.shape[-1]).to(inputs_embeds.device, inputs_embeds.dtype)
    # The placeholders' positions in reading order, by a stable sort that puts them first: their count is known here,
    # so nothing is read off the GPU (masked_scatter's backward reads the mask's count, a host stall at the end of
    # every training backward).
    positions = torch.argsort((~placeholders).flatten().to(torch.uint8), stable=True)[:features.shape[0]]
    flat = inputs_embeds.reshape(-1, inputs_embeds.shape[-1])
    return flat.index_copy(0, positions, features).view_as(inputs_embeds)


class NextGPTPreTrainedModel(PreTrainedModel):
    config: NextGPTConfig
    config_class = NextGPTConfig
    base_model_prefix = ""
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    _no_split_modules = ["ImageBindBlock", "LlamaDecoderLayer"]


class NextGPTForConditionalGeneration(NextGPTPreTrainedModel, GenerationMixin):
    def __init__(self, config: NextGPTConfig):
        super().__init__(config)
        self.vision_tower = NextGPTVisionTower(config)
        self.projector = NextGPTProjector(config)
        if config.audio_config is not None:
            self.audio_tower = AUDIO_TOWERS[config.audio_config.model_type](config.audio_config).requires_grad_(False)
            if not config.share_projector:
                self.audio_projector = NextGPTProjector(config, input_width=config.audio_config.projection_dim)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    @classmethod
    def from_parts(
        cls, language_model: PreTrainedModel, vision_model: PreTrainedModel, audio_model: PreTrainedModel | None = None,
        **config_kwargs,
    ) -> "NextGPTForConditionalGeneration":
        """Wrap a loaded LLM, a loaded tower and optionally ImageBind's audio branch (pretrained weights kept) with
        freshly initialised projectors. The LLM's generation config (its end-of-turn ids, sampling defaults) becomes
        the model's. With audio, the projector is shared where the audio and image features are as wide (NExT-GPT's
        way) unless `share_projector` says otherwise."""
        parts = {"vision_config": vision_model.config.to_dict(), "text_config": language_model.config.to_dict()}
        if audio_model is not None:
            image_width = NextGPTConfig(**parts, **config_kwargs).vision_feature_dim
            config_kwargs.setdefault("share_projector", audio_model.config.projection_dim == image_width)
            parts["audio_config"] = audio_model.config.to_dict()
        config = NextGPTConfig(**parts, **config_kwargs)
        with torch.device("meta"):  # the meta skeleton's LLM and towers are replaced by the loaded ones below
            model = cls(config)
        model.language_model, model.vision_tower.model = language_model, vision_model
        model.generation_config = copy.deepcopy(language_model.generation_config)
        model.projector = NextGPTProjector(config).to(language_model.device)
        if audio_model is not None:
            model.audio_tower = audio_model
            if not config.share_projector:
                model.audio_projector = NextGPTProjector(config, input_width=config.audio_config.projection_dim).to(
                    language_model.device)
        model.set_trainable(projector=True)
        return model

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_output_embeddings(value)

    def set_trainable(self, projector: bool = True, language_model: bool = False) -> None:
        """Stage 1: `set_trainable(projector=True)`; stage 2 full fine-tuning: `language_model=True` as well (for
        LoRA, leave the LLM frozen and let peft add the adapters). The towers never train; an audio projector of its
        own trains with the image projector."""
        self.vision_tower.requires_grad_(False)
        self.projector.requires_grad_(projector)
        if hasattr(self, "audio_tower"):
            self.audio_tower.requires_grad_(False)
        if hasattr(self, "audio_projector"):
            self.audio_projector.requires_grad_(projector)
        self.language_model.requires_grad_(language_model)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Tower features, as cached for training and as accepted back through `forward(image_embeds=...)`."""
        return self.vision_tower(pixel_values)[0]

    @can_return_tuple
    def get_image_features(
        self, pixel_values: torch.Tensor | None = None, image_embeds: torch.Tensor | None = None, **kwargs
    ) -> BaseModelOutputWithPooling:
        """As transformers' vision-language models give it: `last_hidden_state`, the tower features the projector
        takes (num_images, num_image_tokens, vision_feature_dim), from pixels or given as cached `image_embeds`;
        `pooler_output`, the projected image tokens (num_images, num_image_tokens, llm_width); the tower's
        `hidden_states` where `output_hidden_states` (here or in its config) asks for them."""
        tower_outputs = None
        if image_embeds is None:
            image_embeds, tower_outputs = self.vision_tower(pixel_values, **kwargs)
        return BaseModelOutputWithPooling(
            last_hidden_state=image_embeds,
            pooler_output=self.projector(image_embeds.to(self.projector.linear_1.weight.dtype)),
            hidden_states=getattr(tower_outputs, "hidden_states", None),
            attentions=getattr(tower_outputs, "attentions", None),
        )

    @can_return_tuple
    def get_video_features(self, pixel_values_videos: torch.Tensor | None = None,
                           video_embeds: torch.Tensor | None = None, **kwargs) -> BaseModelOutputWithPooling:
        """`pixel_values_videos` (num_videos, clips, 3, frames, H, W), `video_features.video_features` of each video,
        through the image tower (ImageBind's vision branch takes frame pairs) and the image projector ->
        `last_hidden_state`: in embedding mode the mean of the clips' joint embeddings (num_videos, 1, width), as
        ImageBind and NExT-GPT pool them; in patch mode every clip's tokens in clip order (num_videos, clips x
        num_image_tokens, width), or given as cached `video_embeds`; `pooler_output`: those tokens projected."""
        if self.config.vision_config.model_type != VIDEO_TOWER:
            raise ValueError(f"videos need ImageBind's vision branch (its stem takes frame pairs); this model's tower "
                             f"is {self.config.vision_config.model_type}")
        features, outputs = video_embeds, None
        if video_embeds is None:
            num_videos, clips = pixel_values_videos.shape[:2]
            features, outputs = self.vision_tower(pixel_values_videos.flatten(0, 1), **kwargs)
            if self.config.image_mode == "embedding":
                features = features.view(num_videos, clips, -1).mean(dim=1, keepdim=True)
            else:
                features = features.reshape(num_videos, clips * features.shape[1], features.shape[2])
        return BaseModelOutputWithPooling(
            last_hidden_state=features, pooler_output=self.projector(features.to(self.projector.linear_1.weight.dtype)),
            hidden_states=getattr(outputs, "hidden_states", None), attentions=getattr(outputs, "attentions", None),
        )

    @can_return_tuple
    def get_audio_features(self, input_features: torch.Tensor | None = None, audio_embeds: torch.Tensor | None = None,
                           **kwargs) -> BaseModelOutputWithPooling:
        """`input_features` (num_audio, clips, ...): ImageBind's (clips, 1, mel_bins, frames) spectrograms
        (`audio_features.audio_features`), or the speech encoder's one clip of samples (1, samples,
        `speech_embedding.speech_features`) -> `last_hidden_state`: one embedding per audio (num_audio, 1, width),
        the mean over its clips' pooled outputs (ImageBind's joint embeddings, as NExT-GPT pools them; the speech
        encoder's mean over windows), or given as cached `audio_embeds`; `pooler_output`: that token projected
        (num_audio, 1, llm_width)."""
        if not hasattr(self, "audio_tower"):
            raise ValueError("this model has no audio branch (its config has no audio_config)")
        embeddings, outputs = audio_embeds, None
        if audio_embeds is None:
            num_audio, clips = input_features.shape[:2]
            with torch.no_grad():
                outputs = self.audio_tower(input_features.flatten(0, 1), **kwargs)
            embeddings = outputs.pooler_output.view(num_audio, clips, -1).mean(dim=1, keepdim=True)
        projector = getattr(self, "audio_projector", self.projector)
        return BaseModelOutputWithPooling(
            last_hidden_state=embeddings, pooler_output=projector(embeddings.to(projector.linear_1.weight.dtype)),
            hidden_states=getattr(outputs, "hidden_states", None), attentions=getattr(outputs, "attentions", None),
        )

    def embed_inputs(
        self,
        input_ids: torch.LongTensor,
        pixel_values: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings with image (audio, video) tokens written over their placeholders."""
        return self._embed_inputs(input_ids, pixel_values=pixel_values, image_embeds=image_embeds,
                                  input_features=input_features, pixel_values_videos=pixel_values_videos)[0]

    def _embed_inputs(
        self, input_ids: torch.LongTensor, *, pixel_values: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None, input_features: torch.Tensor | None = None,
        audio_embeds: torch.Tensor | None = None, pixel_values_videos: torch.Tensor | None = None,
        video_embeds: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, BaseModelOutputWithPooling]]:
        """(embeddings with the image, audio and video tokens merged in, {"image": ..., "audio": ..., "video": ...}:
        the encoders' outputs for what was given: inputs, or cached features)."""
        for (raw_name, raw), (cached_name, cached) in (
            (("pixel_values", pixel_values), ("image_embeds", image_embeds)),
            (("input_features", input_features), ("audio_embeds", audio_embeds)),
            (("pixel_values_videos", pixel_values_videos), ("video_embeds", video_embeds)),
        ):
            if raw is not None and cached is not None:
                raise ValueError(f"Pass {raw_name} or {cached_name}, not both")
        if (input_features is not None or audio_embeds is not None) and self.config.audio_token_id is None:
            raise ValueError("audio was given, but this model has no audio branch (no audio_config)")
        if (pixel_values_videos is not None or video_embeds is not None) and self.config.video_token_id is None:
            raise ValueError("videos were given, but this model takes no video (no video_token_id)")
        token_ids = {"image": self.config.image_token_id, "audio": self.config.audio_token_id,
                     "video": self.config.video_token_id}
        placeholders = {kind: input_ids == token_id for kind, token_id in token_ids.items() if token_id is not None}
        # A placeholder id may lie past the vocabulary; its rows are overwritten, so look up token 0 there.
        inputs_embeds = self.get_input_embeddings()(input_ids.masked_fill(sum(placeholders.values()).bool(), 0))
        encoders = {
            "image": (pixel_values is not None or image_embeds is not None,
                      lambda: self.get_image_features(pixel_values, image_embeds, return_dict=True)),
            "audio": (input_features is not None or audio_embeds is not None,
                      lambda: self.get_audio_features(input_features, audio_embeds, return_dict=True)),
            "video": (pixel_values_videos is not None or video_embeds is not None,
                      lambda: self.get_video_features(pixel_values_videos, video_embeds, return_dict=True)),
        }
        encoded = {}
        for kind, mask in placeholders.items():
            given, encode = encoders[kind]
            if not given:
                # Compiled decode steps (text tokens only) skip the check to stay one graph.
                if not torch.compiler.is_compiling():
                    torch_compilable_check(~mask.any(), lambda mask=mask, kind=kind: (
                        f"The text has {int(mask.sum())} {kind} placeholder tokens but no {kind}s were given"))
                continue
            encoded[kind] = encode()
            inputs_embeds = merge_features(input_ids, inputs_embeds, encoded[kind].pooler_output, token_ids[kind], kind)
        return inputs_embeds, encoded

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        audio_embeds: torch.Tensor | None = None,
        video_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> MultimodalCausalLMOutputWithPast:
        r"""
        pixel_values: (num_images, 3, H, W), every image of the batch in reading order; the tower runs frozen.
        image_embeds: (num_images, num_image_tokens, vision_feature_dim), cached tower outputs instead of pixels.
        input_features: (num_audio, clips, 1, mel_bins, frames), every audio clip of the batch in reading order
            (`audio_features.audio_features`), for a model with an audio branch.
        pixel_values_videos: (num_videos, clips, 3, frames, H, W), every video of the batch in reading order
            (`video_features.video_features`), for a model with a video_token_id.
        audio_embeds, video_embeds: cached `get_audio_features` / `get_video_features` `last_hidden_state`s
            instead of `input_features` / `pixel_values_videos` (embedding_cache.py).
        labels: -100 where no loss is wanted (prompt, image tokens, padding); shifted inside the language model.
        cache: the language model's KV cache (e.g. a `StaticCache`); other keyword arguments (position_ids,
            use_cache, logits_to_keep, ...) go to the language model too.
        Returns the language model's output with `image_outputs`, `audio_outputs` and `video_outputs` (the
        `get_*_features` outputs) where images, audio or videos were given.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds")
        encoded = {}
        if inputs_embeds is None:
            inputs_embeds, encoded = self._embed_inputs(
                input_ids, pixel_values=pixel_values, image_embeds=image_embeds, input_features=input_features,
                audio_embeds=audio_embeds, pixel_values_videos=pixel_values_videos, video_embeds=video_embeds)
        if cache is not None:  # not cache=None: the language model takes a caller's past_key_values= for its cache
            kwargs["cache"] = cache
        elif self.training:  # the LLM's config asks for a cache (for generation); training would fill one for nothing
            kwargs.setdefault("use_cache", False)
        outputs = self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels,
                                      return_dict=True, **kwargs)
        return MultimodalCausalLMOutputWithPast(**outputs, image_outputs=encoded.get("image"),
                                                audio_outputs=encoded.get("audio"), video_outputs=encoded.get("video"))

    @property
    def can_fast_generate(self) -> bool:
        """Whether `fast_generate` runs this model's language model (Llama-family; plain weights or those of
        weight_quantization.py)."""
        return FastGenerator.supports(self)

    def generate_function_for(self, options: dict):
        """`fast_generate` where it runs this model with these options (CUDA, a Llama-family LLM, options it takes),
        else `generate`: what the pipeline calls. On CUDA, a model the fast path refuses is told why once (a
        bitsandbytes NF4 model, say, is named the faster option)."""
        if self.device.type != "cuda":
            return self.generate
        refusal = FastGenerator.refusal_note(self)
        if refusal:
            logger.warning_once(refusal)
        return self.fast_generate if refusal is None and FastGenerator.accepts(options) else self.generate

    def fast_generate(self, **kwargs) -> torch.LongTensor:
        """`generate` through the fast path (fast_generation.py): own KV cache, and on CUDA Triton matrix-vector
        kernels with the prefill and each decode step replayed as CUDA graphs; kept on the model between calls."""
        if getattr(self, "_fast_generator", None) is None:
            self._fast_generator = FastGenerator(self)
        return self._fast_generator.generate(**kwargs)

    def prepare_inputs_for_generation(
        self, *args, pixel_values=None, image_embeds=None, input_features=None, pixel_values_videos=None,
        is_first_iteration: bool = False, **kwargs,
    ) -> dict:
        """Images, audio and videos go into the prefill only: later steps read them from the KV cache, never
        re-encode them."""
        model_inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        if is_first_iteration or not kwargs.get("use_cache", True):
            model_inputs.update(pixel_values=pixel_values, image_embeds=image_embeds, input_features=input_features,
                                pixel_values_videos=pixel_values_videos)
        return model_inputs


NextGPTForConditionalGeneration.register_for_auto_class("AutoModel")
AutoModel.register(NextGPTConfig, NextGPTForConditionalGeneration, exist_ok=True)
AutoModelForImageTextToText.register(NextGPTConfig, NextGPTForConditionalGeneration, exist_ok=True)

__all__ = ["NextGPTForConditionalGeneration", "NextGPTPreTrainedModel", "NextGPTProjector", "merge_features"]
