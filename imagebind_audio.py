"""The audio branch of Meta's ImageBind, written for transformers like the vision branch (SDPA attention, eager where
attention weights are asked for); loads `imagebind_huge.pth`.

Architecture (imagebind_huge): a 2-second clip's 128-bin log-mel spectrogram (128 x 204) is cut by a 16x16
convolution of stride 10 into 12 x 19 patches, followed by a LayerNorm; a CLS token and learned positions are added
(229 tokens); 12 pre-norm ViT blocks whose attention appends a learned key and value to every sequence
(`nn.MultiheadAttention(add_bias_kv=True)`); the head (LayerNorm -> CLS -> Linear(768, 1024) -> L2 normalise -> x 20)
gives the joint-space embedding that images, text and audio share.
"""

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling

try:
    from .configuration_nextgpt import ImageBindAudioConfig
    from .imagebind_vision import ImageBindBranch
except ImportError:
    from configuration_nextgpt import ImageBindAudioConfig
    from imagebind_vision import ImageBindBranch

# Meta's key names (left) for the audio branch, mapped to this module's (right). Applied in order, first match wins.
IMAGEBIND_AUDIO_KEY_MAP = [
    (r"^modality_preprocessors\.audio\.cls_token$", "cls_token"),
    (r"^modality_preprocessors\.audio\.rgbt_stem\.proj\.weight$", "patch_embed.weight"),
    (r"^modality_preprocessors\.audio\.rgbt_stem\.norm_layer\.", "stem_norm."),
    (r"^modality_preprocessors\.audio\.pos_embedding_helper\.pos_embed$", "pos_embed"),
    (r"^modality_trunks\.audio\.blocks\.(\d+)\.attn\.in_proj_(weight|bias)$", r"blocks.\1.attn.in_proj.\2"),
    (r"^modality_trunks\.audio\.blocks\.", "blocks."),
    (r"^modality_heads\.audio\.0\.", "head_norm."),
    (r"^modality_heads\.audio\.2\.", "head_proj."),
]


class ImageBindAudioModel(ImageBindBranch):
    """Takes `input_features` (B, 1, 128, 204): log-mel spectrograms of 2-second clips, normalised as ImageBind's
    preprocessing leaves them. Returns `last_hidden_state` (B, 229, 768: CLS + patch tokens) and `pooler_output`
    (B, 1024: the joint embedding, of norm 20)."""

    config: ImageBindAudioConfig
    config_class = ImageBindAudioConfig
    main_input_name = "input_features"
    KEY_MAP, BRANCH = IMAGEBIND_AUDIO_KEY_MAP, "audio"

    def __init__(self, config: ImageBindAudioConfig):
        frequency_patches, time_patches = config.num_patches
        super().__init__(config, num_tokens=frequency_patches * time_patches + 1)
        self.patch_embed = nn.Conv2d(1, config.hidden_size, kernel_size=config.patch_size,
                                     stride=config.patch_stride, bias=False)
        self.stem_norm = nn.LayerNorm(config.hidden_size, eps=config.stem_norm_eps)
        self.post_init()

    def forward(self, input_features: torch.Tensor, output_hidden_states: bool | None = None,
                output_attentions: bool | None = None, **kwargs) -> BaseModelOutputWithPooling:
        if input_features.shape[-2:] != (self.config.num_mel_bins, self.config.target_length):
            raise ValueError(f"input_features must be (batch, 1, {self.config.num_mel_bins}, "
                             f"{self.config.target_length}) spectrograms, got {tuple(input_features.shape)}")
        patches = self.patch_embed(input_features.to(self.patch_embed.weight.dtype)).flatten(2).transpose(1, 2)
        return self.run_trunk(self.with_cls_and_positions(self.stem_norm(patches)), output_hidden_states,
                              output_attentions, embedding_scale=self.config.logit_scale)


__all__ = ["ImageBindAudioModel"]
