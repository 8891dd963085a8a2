"""The frozen image encoder: builds any supported tower from its config and hands the projector the features that
`config.image_mode` asks for. To add a tower, add its model class to `TOWER_CLASSES` (or let `AutoModel` build it)."""

import torch
from torch import nn
from transformers import AutoModel, CLIPVisionModelWithProjection, PreTrainedModel
from transformers.utils import ModelOutput

try:
    from .configuration_nextgpt import NextGPTConfig
    from .efficientnet_lite import EfficientNetLiteModel
    from .imagebind_vision import ImageBindVisionModel
except ImportError:
    from configuration_nextgpt import NextGPTConfig
    from efficientnet_lite import EfficientNetLiteModel
    from imagebind_vision import ImageBindVisionModel

# Towers whose model class is not the one `AutoModel` picks for their config.
TOWER_CLASSES: dict[str, type[PreTrainedModel]] = {
    "imagebind_vision": ImageBindVisionModel,
    "efficientnet_lite": EfficientNetLiteModel,
    "clip_vision_model": CLIPVisionModelWithProjection,  # the projection gives CLIP's joint-space embedding
}


class NextGPTVisionTower(nn.Module):
    """Always frozen and in eval mode (so no BatchNorm statistics drift during training); runs without gradients.
    Its `config` and attention support are the tower model's, as transformers looks for them on a vision tower."""

    @property
    def config(self):
        return self.model.config

    @property
    def _supports_sdpa(self) -> bool:
        return self.model._supports_sdpa

    def __init__(self, config: NextGPTConfig):
        super().__init__()
        vision_config = config.vision_config
        tower_class = TOWER_CLASSES.get(vision_config.model_type)
        self.model = tower_class(vision_config) if tower_class else AutoModel.from_config(vision_config)
        self.model.requires_grad_(False)
        self.image_mode = config.image_mode

    def train(self, mode: bool = True) -> "NextGPTVisionTower":
        return super().train(False)

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor, **kwargs) -> tuple[torch.Tensor, ModelOutput]:
        """(num_images, 3, H, W) -> (image features: (num_images, num_image_tokens, vision_feature_dim), what the
        projector takes; the tower's own output, with hidden states or attentions where `kwargs` ask for them and
        the tower gives them)."""
        outputs = self.model(pixel_values=pixel_values.to(self.model.dtype), **kwargs)
        if self.image_mode == "patches":
            return outputs.last_hidden_state, outputs
        pooled = getattr(outputs, "image_embeds", None)
        return (pooled if pooled is not None else outputs.pooler_output).unsqueeze(1), outputs


__all__ = ["NextGPTVisionTower", "TOWER_CLASSES"]
