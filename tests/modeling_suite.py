"""transformers' `ModelTesterMixin` applied to NextGPTForConditionalGeneration, with a tiny config (an ImageBind-shaped
tower on 28-pixel images: 5 patch tokens; a 2-layer Llama). Not collected here: `test_transformers_suites.py` copies it
beside the installed transformers version's own `tests/test_modeling_common.py`, fetched at test time, and runs it."""

import unittest

import torch
from transformers import LlamaConfig

from configuration_nextgpt import ImageBindVisionConfig, NextGPTConfig
from modeling_nextgpt import NextGPTForConditionalGeneration
from test_transformers_suites import MODEL_INAPPLICABLE, MODEL_NOT_YET_PASSING

from .test_modeling_common import ModelTesterMixin, floats_tensor, ids_tensor


class VideoTester:
    """What the mixin's `get_video_features` tests feed: videos of two clips of frame pairs (a clip is what
    ImageBind's stem takes), one video per row of the batch; the tower has `num_hidden_layers` blocks."""

    def __init__(self, parent: "NextGPTModelTester", clips: int = 2):
        self.parent, self.clips, self.num_hidden_layers = parent, clips, parent.vision_config["num_hidden_layers"]

    def prepare_config_and_inputs_for_common(self):
        size = self.parent.image_size
        return self.parent.get_config(), {
            "pixel_values_videos": floats_tensor([self.parent.batch_size, self.clips, 3, 2, size, size])}


class NextGPTModelTester:
    """Each row: the image's placeholder tokens, then text. Batch 7, as the mixin's eager-vs-SDPA test uses (it pads
    smaller batches with rows of random text, which would leave their images without placeholders). The placeholder
    is token 1, below the vocabulary size the embedding-resize test shrinks to."""

    def __init__(self, parent, batch_size: int = 7, text_length: int = 7, image_size: int = 28):
        self.parent, self.batch_size, self.text_length, self.image_size = parent, batch_size, text_length, image_size
        self.is_training = True
        self.vocab_size, self.hidden_size, self.num_hidden_layers, self.num_attention_heads = 100, 32, 2, 4
        self.image_token_id, self.pad_token_id = 1, 0
        self.vision_config = ImageBindVisionConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                   projection_dim=24, image_size=image_size).to_dict()
        self.seq_length = self.get_config().num_image_tokens + text_length
        self.video_model_tester = VideoTester(self)

    def get_config(self) -> NextGPTConfig:
        text = LlamaConfig(vocab_size=self.vocab_size, hidden_size=self.hidden_size, intermediate_size=37,
                           num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
                           num_key_value_heads=2, max_position_embeddings=512, pad_token_id=self.pad_token_id)
        return NextGPTConfig(vision_config=self.vision_config, text_config=text.to_dict(), image_mode="patches",
                             image_token_id=self.image_token_id)

    def prepare_config_and_inputs_for_common(self):
        config = self.get_config()
        text = ids_tensor([self.batch_size, self.text_length], self.vocab_size - 2) + 2  # no pad, no placeholder
        input_ids = torch.cat([torch.full((self.batch_size, config.num_image_tokens), self.image_token_id), text], 1)
        pixel_values = floats_tensor([self.batch_size, 3, self.image_size, self.image_size])
        return config, {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
                        "pixel_values": pixel_values}


class NextGPTModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (NextGPTForConditionalGeneration,)
    _is_composite = True
    additional_model_inputs = ["pixel_values"]

    def setUp(self):
        self.model_tester = NextGPTModelTester(self)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        """The mixin adds labels only for the model classes of transformers' task mappings; ours learns the text."""
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels)
        if return_labels:
            inputs_dict["labels"] = inputs_dict["input_ids"].masked_fill(
                inputs_dict["input_ids"] == self.model_tester.image_token_id, -100)
        return inputs_dict


for name, reason in MODEL_INAPPLICABLE.items():
    setattr(NextGPTModelTest, name, unittest.skip(reason)(getattr(NextGPTModelTest, name)))
for name in MODEL_NOT_YET_PASSING:
    setattr(NextGPTModelTest, name, unittest.expectedFailure(getattr(NextGPTModelTest, name)))
