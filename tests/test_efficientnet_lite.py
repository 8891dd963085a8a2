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


@pytest.mark.parametrize("tower", ["efficientnet-lite0-stem", "efficientnet-lite0-stem-max"])
def test_stem_features_append_the_stems_channels_per_cell(packaged, tower):
    """`efficientnet-lite0-stem`: the head's 1280 channels unchanged, then the first convolution's 32 averaged over
    each token's cell (`-stem-max`: then their maximum over it); ImageNet logits untouched."""
    from assemble_nextgpt import EFFICIENTNET_LITE0_TOWERS

    with_stem = EfficientNetLiteModel.from_packaged_weights(**EFFICIENTNET_LITE0_TOWERS[tower])
    pixel_values = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        plain, output = packaged(pixel_values), with_stem(pixel_values)
        stem = torch.nn.functional.relu6(packaged._bn0(packaged._conv_stem(pixel_values)))
        torch.testing.assert_close(with_stem.classify(pixel_values), packaged.classify(pixel_values))
    width = 1312 if tower == "efficientnet-lite0-stem" else 1344
    assert output.last_hidden_state.shape == (2, 49, width)
    torch.testing.assert_close(output.last_hidden_state[..., :1280], plain.last_hidden_state)
    cell = stem[0, :, 16:32, 32:48]  # token 9: row 1, column 2 of the 7 x 7 grid (16 x 16 stem cells)
    torch.testing.assert_close(output.last_hidden_state[0, 9, 1280:1312], cell.mean((1, 2)))
    if width == 1344:
        torch.testing.assert_close(output.last_hidden_state[0, 9, 1312:], cell.amax((1, 2)))
    config = NextGPTConfig(vision_config=with_stem.config.to_dict(), text_config=tiny_text_config(),
                           image_mode="patches")
    config = NextGPTConfig.from_dict(config.to_dict())
    assert config.vision_config.stem_features and config.vision_feature_dim == width


def test_packaged_weights_load_strictly(tmp_path, packaged):
    state = packaged.state_dict()
    state.pop("_fc.bias")
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(RuntimeError, match="_fc.bias"):
        EfficientNetLiteModel.from_packaged_weights(str(tmp_path / "partial.pth"))
