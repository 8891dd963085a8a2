"""The ImageBind tower against Meta's own implementation (the `imagebind-unofficial` package holds Meta's code)."""

import importlib.util
import sys
import types

import pytest
import torch
from torch import nn

from configuration_nextgpt import ImageBindVisionConfig
from imagebind_vision import ImageBindVisionModel, convert_imagebind_state_dict

TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, projection_dim=48)


def import_meta_imagebind(module: str = "models.imagebind_model", stubs: dict | None = None) -> types.ModuleType:
    """Import Meta's `imagebind.<module>` without the package `__init__` (it imports torchaudio and torchvision), with
    timm's two helpers stubbed (timm needs torchvision; DropPath is the identity in eval mode) and any other modules
    given in `stubs` standing in while it imports."""
    spec = importlib.util.find_spec("imagebind")
    if spec is None:
        pytest.skip("imagebind-unofficial is not installed (pip install -e .[parity])")
    package = types.ModuleType("imagebind")
    package.__path__ = list(spec.submodule_search_locations)
    timm, timm_layers = types.ModuleType("timm"), types.ModuleType("timm.layers")
    timm_layers.DropPath = lambda drop_prob: nn.Identity()
    timm_layers.trunc_normal_ = nn.init.trunc_normal_
    timm.layers = timm_layers
    stubs = {"imagebind": package, "timm": timm, "timm.layers": timm_layers, **(stubs or {})}
    saved = {name: sys.modules.get(name) for name in [*stubs, f"imagebind.{module}"]}
    sys.modules.update(stubs)
    try:
        return importlib.import_module(f"imagebind.{module}")
    finally:
        for name, saved_module in saved.items():
            if saved_module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = saved_module


def tiny_meta_imagebind(branch: str = "vision", dims: dict = TINY):
    """Meta's ImageBindModel with `branch` at `dims` (our config's names) and every other branch smaller still."""
    imagebind_model = import_meta_imagebind()
    torch.manual_seed(0)
    small = dict(embed_dim=32, num_blocks=1, num_heads=2)
    model = imagebind_model.ImageBindModel(
        **{f"{branch}_embed_dim": dims["hidden_size"], f"{branch}_num_blocks": dims["num_hidden_layers"],
           f"{branch}_num_heads": dims["num_attention_heads"]}, out_embed_dim=dims["projection_dim"],
        **{f"{modality}_{key}": value for modality in ("vision", "text", "audio", "depth", "thermal", "imu")
           if modality != branch for key, value in small.items()},
    ).eval()
    # Meta's init leaves biases at zero; randomise every weight so that no term can hide.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.2)
    return model


def ours_beside_meta(tmp_path, model_class, inputs: torch.Tensor, dims: dict = TINY):
    """Our branch (`model_class`) loaded from a tiny Meta ImageBind's checkpoint, both run on `inputs`: (our output,
    Meta's trunk tokens, Meta's joint embedding)."""
    branch = model_class.BRANCH
    meta = tiny_meta_imagebind(branch, dims)
    checkpoint = tmp_path / "imagebind_tiny.pth"
    torch.save(meta.state_dict(), checkpoint)
    ours = model_class.from_imagebind_checkpoint(checkpoint, model_class.config_class(**dims)).eval()
    with torch.no_grad():
        embedding = meta({branch: inputs})[branch]
        tokens = meta.modality_trunks[branch](**meta.modality_preprocessors[branch](**{branch: inputs})["trunk"])
        return ours(inputs), tokens, embedding


def test_matches_meta_imagebind_in_fp32(tmp_path):
    output, expected_tokens, expected_embedding = ours_beside_meta(
        tmp_path, ImageBindVisionModel, torch.randn(3, 3, 224, 224))

    assert output.last_hidden_state.shape == (3, 257, TINY["hidden_size"])
    assert output.pooler_output.shape == (3, TINY["projection_dim"])
    torch.testing.assert_close(output.last_hidden_state, expected_tokens, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(output.pooler_output, expected_embedding, atol=1e-5, rtol=1e-5)


def test_video_clips_match_meta_imagebind_in_fp32(tmp_path):
    """Real frame pairs (two different frames a clip), as video_features.py gives them: the same trunk tokens per clip
    as Meta's branch, and the mean of the clips' joint embeddings is Meta's video embedding (its forward averages the
    clips of a (videos, clips, 3, 2, H, W) input)."""
    meta = tiny_meta_imagebind("vision")
    torch.save(meta.state_dict(), tmp_path / "imagebind_tiny.pth")
    ours = ImageBindVisionModel.from_imagebind_checkpoint(tmp_path / "imagebind_tiny.pth",
                                                           ImageBindVisionConfig(**TINY)).eval()
    videos = torch.randn(2, 5, 3, 2, 224, 224)
    with torch.no_grad():
        expected_embedding = meta({"vision": videos})["vision"]
        trunk_inputs = meta.modality_preprocessors["vision"](vision=videos.flatten(0, 1))["trunk"]
        expected_tokens = meta.modality_trunks["vision"](**trunk_inputs)
        output = ours(videos.flatten(0, 1))
    torch.testing.assert_close(output.last_hidden_state, expected_tokens, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(output.pooler_output.view(2, 5, -1).mean(dim=1), expected_embedding, atol=1e-5,
                               rtol=1e-5)


def test_conversion_takes_every_vision_weight_and_nothing_else():
    meta = tiny_meta_imagebind()
    converted = convert_imagebind_state_dict(meta.state_dict())
    ours = ImageBindVisionModel(ImageBindVisionConfig(**TINY))
    assert set(converted) == set(ours.state_dict())
    vision_keys = [key for key in meta.state_dict() if ".vision." in key]
    assert len(converted) == len(vision_keys)


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        ImageBindVisionModel.from_imagebind_checkpoint(tmp_path / "nope.pth")


def test_huge_defaults_give_imagebind_huge_shapes():
    config = ImageBindVisionConfig()
    with torch.device("meta"):
        model = ImageBindVisionModel(config)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(632e6, rel=0.01)
    assert model.pos_embed.shape == (1, 257, 1280)


def test_bf16_runs_close_to_fp32():
    model = ImageBindVisionModel(ImageBindVisionConfig(**TINY)).eval()
    pixel_values = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        reference = model(pixel_values).pooler_output
        low = model.to(torch.bfloat16)(pixel_values).pooler_output.float()
    assert (low - reference).norm() / reference.norm() < 2e-2
