"""Assemble a NextGPT from pretrained parts: an LLM (folder, hub id, or GGUF file) and a vision tower (Meta's ImageBind
checkpoint, or a transformers vision model), with the matching processor. The projector starts untrained (stage 1)."""

import torch
from transformers import AutoConfig, AutoImageProcessor, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from efficientnet_lite import EfficientNetLiteModel, efficientnet_lite_image_processor
from imagebind_vision import ImageBindVisionModel
from modeling_nextgpt import NextGPTForConditionalGeneration
from processing_nextgpt import NextGPTProcessor, imagebind_image_processor
from vision_tower import TOWER_CLASSES

EFFICIENTNET_LITE0 = "efficientnet-lite0"


def load_language_model(
    llm: str, gguf_file: str | None = None, dtype: torch.dtype | None = None, quantization_config=None
):
    """(model, tokenizer) from a folder or hub id; `gguf_file` names a GGUF file inside it (dequantised on load);
    `quantization_config` (bitsandbytes) loads it in 4 or 8 bits for QLoRA."""
    model = AutoModelForCausalLM.from_pretrained(
        llm, gguf_file=gguf_file, dtype=dtype, quantization_config=quantization_config
    )
    tokenizer = AutoTokenizer.from_pretrained(llm, gguf_file=gguf_file)
    if gguf_file:
        # The weights are plain tensors now; without this, save_pretrained refuses a "quantized" model.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model, tokenizer


def load_vision_tower(vision_tower: str, dtype: torch.dtype | None = None):
    """(model, image_processor) from `efficientnet-lite0` (the packaged ImageNet weights), Meta's ImageBind checkpoint
    (a `.pth` file), or a transformers vision model (a folder or hub id of a vision model or of a dual model such as
    CLIP/SigLIP, whose vision half is taken)."""
    if vision_tower == EFFICIENTNET_LITE0:
        model = EfficientNetLiteModel.from_packaged_weights()
        return (model.to(dtype) if dtype else model), efficientnet_lite_image_processor()
    if vision_tower.endswith(".pth"):
        model = ImageBindVisionModel.from_imagebind_checkpoint(vision_tower)
        return (model.to(dtype) if dtype else model), imagebind_image_processor()
    config = AutoConfig.from_pretrained(vision_tower)
    vision_config = getattr(config, "vision_config", None) or config
    model_class = TOWER_CLASSES.get(vision_config.model_type) or MODEL_MAPPING[type(vision_config)]
    model = model_class.from_pretrained(vision_tower, dtype=dtype)
    return model, AutoImageProcessor.from_pretrained(vision_tower)


def assemble_nextgpt(
    llm: str,
    vision_tower: str,
    image_mode: str = "embedding",
    projector_type: str = "linear",
    llm_gguf_file: str | None = None,
    dtype: torch.dtype | None = None,
    image_token: str = "<image>",
    quantization_config=None,
) -> tuple[NextGPTForConditionalGeneration, NextGPTProcessor]:
    language_model, tokenizer = load_language_model(llm, llm_gguf_file, dtype, quantization_config)
    vision_model, image_processor = load_vision_tower(vision_tower, dtype)
    return assemble_from_models(
        language_model, tokenizer, vision_model, image_processor, image_mode, projector_type, image_token
    )


def assemble_from_models(
    language_model: PreTrainedModel,
    tokenizer,
    vision_model: PreTrainedModel,
    image_processor,
    image_mode: str = "embedding",
    projector_type: str = "linear",
    image_token: str = "<image>",
) -> tuple[NextGPTForConditionalGeneration, NextGPTProcessor]:
    processor = NextGPTProcessor(image_processor, tokenizer, image_token=image_token)
    model = NextGPTForConditionalGeneration.from_parts(
        language_model, vision_model, image_mode=image_mode, projector_type=projector_type,
        image_token_id=processor.image_token_id,
    )
    processor.num_image_tokens = model.config.num_image_tokens
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, processor

