"""The EfficientNet-Lite0 tower with the packaged ImageNet weights: right answers on real photos, right shapes."""

import pytest
import torch
from PIL import Image

from conftest import tiny_text_config
from configuration_nextgpt import EfficientNetLiteConfig, NextGPTConfig
from efficientnet_lite import EfficientNetLiteModel, efficientnet_lite_image_processor

skimage_data = pytest.importorskip("skimage.data")

# ImageNet class indices: 281-285 cats (285 Egyptian cat), 967 espresso, 872 tripod, 657 missile.
EXPECTED = {"chelsea": {281, 282, 285}, "coffee": {967}, "camera": {872}, "rocket": {657, 744}}


@pytest.fixture(scope="module")
def packaged():
    return EfficientNetLiteModel.from_packaged_weights()


def test_imagenet_top1_is_right_on_scikit_image_photos(packaged):
    processor = efficientnet_lite_image_processor()
    images = [Image.fromarray(getattr(skimage_data, name)()).convert("RGB") for name in EXPECTED]
    with torch.no_grad():
        top1 = packaged.classify(processor(images, return_tensors="pt")["pixel_values"]).argmax(-1).tolist()
    for (name, accepted), predicted in zip(EXPECTED.items(), top1):
        assert predicted in accepted, (name, predicted)


def test_features_are_49_patch_tokens_and_their_mean(packaged):
    pixel_values = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        output = packaged(pixel_values)
    assert output.last_hidden_state.shape == (2, 49, 1280)
    torch.testing.assert_close(output.pooler_output, output.last_hidden_state.mean(1))
    for mode, tokens in (("patches", 49), ("embedding", 1)):
        config = NextGPTConfig(vision_config=EfficientNetLiteConfig().to_dict(), text_config=tiny_text_config(),
                               image_mode=mode)
        assert config.num_image_tokens == tokens and config.vision_feature_dim == 1280


def test_packaged_weights_load_strictly(tmp_path, packaged):
    state = packaged.state_dict()
    state.pop("_fc.bias")
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(RuntimeError, match="_fc.bias"):
        EfficientNetLiteModel.from_packaged_weights(str(tmp_path / "partial.pth"))
