"""The vision branch of Meta's ImageBind, written for transformers: SDPA attention (eager where attention weights are
asked for), bf16-ready; loads `imagebind_huge.pth`.

Architecture (imagebind_huge): the image is repeated into a 2-frame clip (a video gives real frame pairs), a 2x14x14
Conv3d cuts it into 16x16 patches, a CLS token and learned positions are added, a LayerNorm precedes 32 pre-norm ViT
blocks, and the head (LayerNorm -> CLS -> Linear(1280, 1024) -> L2 normalise) gives the joint-space embedding.
"""

import os
import re

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.modeling_outputs import BaseModelOutputWithPooling

try:
    from .configuration_nextgpt import ImageBindVisionConfig
except ImportError:
    from configuration_nextgpt import ImageBindVisionConfig

# Meta's key names (left) for the vision branch, mapped to this module's (right). Applied in order, first match wins.
IMAGEBIND_KEY_MAP = [
    (r"^modality_preprocessors\.vision\.cls_token$", "cls_token"),
    (r"^modality_preprocessors\.vision\.rgbt_stem\.proj\.1\.weight$", "patch_embed.weight"),
    (r"^modality_preprocessors\.vision\.pos_embedding_helper\.pos_embed$", "pos_embed"),
    (r"^modality_trunks\.vision\.pre_transformer_layer\.0\.", "pre_norm."),
    (r"^modality_trunks\.vision\.blocks\.(\d+)\.attn\.in_proj_(weight|bias)$", r"blocks.\1.attn.in_proj.\2"),
    (r"^modality_trunks\.vision\.blocks\.", "blocks."),
    (r"^modality_heads\.vision\.0\.", "head_norm."),
    (r"^modality_heads\.vision\.2\.", "head_proj."),
]


def eager_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    attention_mask: torch.Tensor | None, scaling: float, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T * scaling) v with the weights returned (`output_attentions`); (B, L, heads, D) like SDPA's."""
    weights = torch.softmax(torch.matmul(query, key.transpose(2, 3)) * scaling, dim=-1, dtype=torch.float32)
    weights = weights.to(query.dtype)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class ImageBindAttention(nn.Module):
    """`nn.MultiheadAttention`'s packed projections (so Meta's weights load), computed by the attention
    implementation the config names (SDPA by default, eager where attention weights are wanted)."""

    is_causal = False

    def __init__(self, config: ImageBindVisionConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.in_proj = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)
        if getattr(config, "add_bias_kv", False):  # nn.MultiheadAttention(add_bias_kv=True): the audio branch
            self.bias_k = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
            self.bias_v = nn.Parameter(torch.zeros(1, 1, config.hidden_size))

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, width = hidden_states.shape
        qkv = self.in_proj(hidden_states).view(batch, length, 3, self.num_heads, width // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)
        if hasattr(self, "bias_k"):  # one more key and value at the end of every sequence, as torch appends them
            key, value = (torch.cat([states, bias.view(1, self.num_heads, 1, -1).expand(batch, -1, -1, -1)], dim=2)
                          for states, bias in ((key, self.bias_k), (value, self.bias_v)))
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention)
        attended, weights = attention(self, query, key, value, None, scaling=(width // self.num_heads) ** -0.5)
        return self.out_proj(attended.reshape(batch, length, width)), weights


class ImageBindMLP(nn.Module):
    def __init__(self, config: ImageBindVisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.mlp_ratio * config.hidden_size)
        self.fc2 = nn.Linear(config.mlp_ratio * config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(hidden_states)))


class ImageBindBlock(nn.Module):
    def __init__(self, config: ImageBindVisionConfig):
        super().__init__()
        self.norm_1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attn = ImageBindAttention(config)
        self.norm_2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = ImageBindMLP(config)

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.attn(self.norm_1(hidden_states))
        hidden_states = hidden_states + attended
        return hidden_states + self.mlp(self.norm_2(hidden_states)), weights


class ImageBindBranch(PreTrainedModel):
    """What ImageBind's branches share: a CLS token and learned positions before a trunk of `ImageBindBlock`s, a
    head (LayerNorm -> CLS -> Linear) into the joint space, and loading from Meta's checkpoint by `KEY_MAP`. A branch
    builds its stem, turns its input into patch tokens in `forward`, and hands them to `with_cls_and_positions` and
    `run_trunk`."""

    KEY_MAP: list[tuple[str, str]]
    BRANCH: str
    _no_split_modules = ["ImageBindBlock"]
    _supports_sdpa = True

    def __init__(self, config, num_tokens: int):
        super().__init__(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, config.hidden_size))
        self.blocks = nn.ModuleList(ImageBindBlock(config) for _ in range(config.num_hidden_layers))
        self.head_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.head_proj = nn.Linear(config.hidden_size, config.projection_dim, bias=False)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, ImageBindBranch):
            nn.init.normal_(module.cls_token, std=self.config.hidden_size**-0.5)
            nn.init.normal_(module.pos_embed, std=self.config.hidden_size**-0.5)

    def with_cls_and_positions(self, patches: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.cls_token.expand(patches.shape[0], -1, -1), patches], dim=1) + self.pos_embed

    def run_trunk(self, hidden_states: torch.Tensor, output_hidden_states: bool | None,
                  output_attentions: bool | None, embedding_scale: float = 1.0) -> BaseModelOutputWithPooling:
        """`last_hidden_state`: the trunk's tokens (CLS first); `pooler_output`: the normalised joint embedding
        (times `embedding_scale`); `hidden_states` (with `output_hidden_states`, or the config's): the tokens entering
        each block, and the last; `attentions` (with `output_attentions` or the config's, under eager attention): each
        block's weights."""
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        all_hidden_states, all_attentions = [hidden_states], []
        for block in self.blocks:
            hidden_states, weights = block(hidden_states)
            all_hidden_states.append(hidden_states)
            all_attentions.append(weights)
        embedding = F.normalize(self.head_proj(self.head_norm(hidden_states[:, 0])), dim=-1) * embedding_scale
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden_states, pooler_output=embedding,
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None,
        )

    @classmethod
    def from_imagebind_checkpoint(cls, checkpoint_path: str | os.PathLike, config=None) -> "ImageBindBranch":
        """Build the branch from Meta's full ImageBind checkpoint (`imagebind_huge.pth`), keeping only its weights."""
        if not os.path.isfile(checkpoint_path):
            raise FileNotFoundError(f"ImageBind checkpoint not found: {checkpoint_path}")
        state_dict = torch.load(checkpoint_path, map_location="cpu", weights_only=True, mmap=True)
        model = cls(config or cls.config_class())
        model.load_state_dict(convert_imagebind_state_dict(state_dict, cls.KEY_MAP, cls.BRANCH), strict=True)
        return model


class ImageBindVisionModel(ImageBindBranch):
    """Returns `last_hidden_state` (B, 257, 1280: CLS + patch tokens) and `pooler_output` (B, 1024: joint embedding)."""

    config: ImageBindVisionConfig
    config_class = ImageBindVisionConfig
    main_input_name = "pixel_values"
    KEY_MAP, BRANCH = IMAGEBIND_KEY_MAP, "vision"

    def __init__(self, config: ImageBindVisionConfig):
        super().__init__(config, num_tokens=(config.image_size // config.patch_size) ** 2 + 1)
        kernel = (config.num_frames, config.patch_size, config.patch_size)
        self.patch_embed = nn.Conv3d(3, config.hidden_size, kernel_size=kernel, stride=kernel, bias=False)
        self.pre_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None,
                output_attentions: bool | None = None, **kwargs) -> BaseModelOutputWithPooling:
        """pixel_values: images (B, 3, H, W), each repeated into a clip of equal frames, or video clips
        (B, 3, num_frames, H, W) of real frames (video_features.py)."""
        clip = pixel_values.to(self.patch_embed.weight.dtype)
        if clip.dim() == 4:
            clip = clip.unsqueeze(2).repeat(1, 1, self.config.num_frames, 1, 1)
        patches = self.patch_embed(clip).flatten(2).transpose(1, 2)
        return self.run_trunk(self.pre_norm(self.with_cls_and_positions(patches)), output_hidden_states,
                              output_attentions)


def convert_imagebind_state_dict(state_dict: dict[str, torch.Tensor],
                                 key_map: list[tuple[str, str]] = IMAGEBIND_KEY_MAP,
                                 branch: str = "vision") -> dict[str, torch.Tensor]:
    """Select one branch of a Meta ImageBind state dict (the vision branch by default) and rename its keys to this
    repository's by `key_map`."""
    converted = {}
    for key, tensor in state_dict.items():
        for pattern, replacement in key_map:
            if re.search(pattern, key):
                converted[re.sub(pattern, replacement, key)] = tensor
                break
    if not converted:
        raise ValueError(f"No ImageBind {branch} weights (modality_*.{branch}.*) found in this checkpoint")
    return converted


__all__ = ["ImageBindBranch", "ImageBindVisionModel", "convert_imagebind_state_dict"]
