"""The processor: chat templates, placeholder expansion, labels, truncation and ImageBind's preprocessing."""

from collections.abc import Mapping

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import random_image, tiny_config
from processing_nextgpt import IGNORE_INDEX, LLAMA2_CHAT_TEMPLATE, NextGPTProcessor, imagebind_image_processor

LLAMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
CONVERSATION = [
    {"role": "user", "content": "<image>\nWhat shape is in the image?"},
    {"role": "assistant", "content": "A red circle."},
    {"role": "user", "content": "Is it large?"},
    {"role": "assistant", "content": "No, it is small and sits in the corner."},
]
ANSWERS = ["A red circle.", "No, it is small and sits in the corner."]


def supervised_spans(example, tokenizer) -> list[str]:
    """Decode each run of consecutive supervised tokens."""
    spans, current = [], []
    for token, label in zip(example["input_ids"], example["labels"]):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            spans.append(tokenizer.decode(current))
            current = []
    if current:
        spans.append(tokenizer.decode(current))
    return spans


@pytest.mark.parametrize(
    "template, end_of_turn",
    [(LLAMA2_CHAT_TEMPLATE, " <|im_end|>"), (None, "<|im_end|>"), (LLAMA3_CHAT_TEMPLATE, "<|eot_id|>")],
    ids=["llama2-chat", "chatml-smollm2", "llama3"],
)
def test_labels_cover_exactly_the_assistant_replies(make_processor, template, end_of_turn):
    config = tiny_config("patches")
    processor = make_processor(config, chat_template=template)
    processor.tokenizer.add_tokens(["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], special_tokens=True)
    example = processor.build_training_example(CONVERSATION, images=[random_image()])
    # Strip: a BPE tokenizer folds the space after "[/INST]" into the reply's first token, which must be learned.
    spans = [span.strip() for span in supervised_spans(example, processor.tokenizer)]
    assert spans == [answer + end_of_turn for answer in ANSWERS]
    assert example["input_ids"].count(processor.image_token_id) == config.num_image_tokens
    assert example["pixel_values"].shape == (1, 3, 224, 224)


def test_llama2_template_is_the_fallback_and_has_one_bos(tokenizer):
    tokenizer.chat_template = None
    processor = NextGPTProcessor(imagebind_image_processor(), tokenizer, num_image_tokens=1)
    assert processor.chat_template == LLAMA2_CHAT_TEMPLATE
    text = processor.render(CONVERSATION[:1], add_generation_prompt=True)
    assert text == f"{tokenizer.bos_token}[INST] <image>\nWhat shape is in the image? [/INST]"
    ids = processor(text=text, images=[random_image()], return_tensors="pt")["input_ids"][0].tolist()
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id
    example = processor.build_training_example(CONVERSATION, images=[random_image()])
    assert example["input_ids"].count(tokenizer.bos_token_id) == 2  # one per [INST] turn, as Llama-2-chat expects


def test_system_prompt_and_text_only_conversations(make_processor):
    processor = make_processor(tiny_config("embedding"), chat_template=LLAMA2_CHAT_TEMPLATE)
    conversation = [{"role": "system", "content": "Be brief."}, *CONVERSATION[2:]]
    example = processor.build_training_example(conversation)
    assert [span.strip() for span in supervised_spans(example, processor.tokenizer)] == [ANSWERS[1] + " <|im_end|>"]
    assert "pixel_values" not in example and processor.image_token_id not in example["input_ids"]


def test_image_embeds_are_passed_through_aligned_with_placeholders(make_processor):
    config = tiny_config("patches")
    processor = make_processor(config)
    embeds = torch.randn(2, config.num_image_tokens, 32)
    conversation = [{"role": "user", "content": "<image> and <image>: same?"}, {"role": "assistant", "content": "No."}]
    example = processor.build_training_example(conversation, image_embeds=embeds)
    assert example["image_embeds"] is embeds
    assert example["input_ids"].count(processor.image_token_id) == 2 * config.num_image_tokens
    batch = processor(text=["<image> one", "two <image>"], image_embeds=embeds, padding=True, return_tensors="pt")
    assert (batch["input_ids"] == processor.image_token_id).sum() == 2 * config.num_image_tokens


def test_placeholder_and_image_counts_must_agree(make_processor):
    processor = make_processor(tiny_config("embedding"))
    with pytest.raises(ValueError, match=r"1 <image> placeholders \(per prompt: \[1, 0\]\) but 2 images"):
        processor(text=["<image> a", "b"], images=[random_image(), random_image()], return_tensors="pt")
    with pytest.raises(ValueError, match=r"2 <image> placeholders but 1 images"):
        processor.build_training_example(
            [{"role": "user", "content": "<image><image>"}, {"role": "assistant", "content": "x"}],
            images=[random_image()],
        )
    with pytest.raises(ValueError, match="no assistant reply"):
        processor.build_training_example([{"role": "user", "content": "hi"}])


def test_only_the_end_of_the_last_reply_may_be_truncated(make_processor):
    processor = make_processor(tiny_config("embedding"))
    full = processor.build_training_example(CONVERSATION, images=[random_image()])
    cut = processor.build_training_example(CONVERSATION, images=[random_image()], max_length=len(full["input_ids"]) - 3)
    assert cut["input_ids"] == full["input_ids"][:-3] and cut["labels"] == full["labels"][:-3]
    last_reply_start = len(full["input_ids"]) - 1 - full["labels"][::-1].index(IGNORE_INDEX)
    with pytest.raises(ValueError, match=r"last reply starts at token \d+, past max_length=5"):
        processor.build_training_example(CONVERSATION, images=[random_image()], max_length=5)
    assert last_reply_start > 5


def reference_imagebind_transform(image: Image.Image) -> np.ndarray:
    """ImageBind's torchvision pipeline on a PIL image, written out with torchvision's size and crop arithmetic:
    Resize(224, bicubic) (long side truncated), CenterCrop(224) (offsets rounded), ToTensor, Normalize(CLIP)."""
    width, height = image.size
    short, long = sorted((width, height))
    new_long = int(224 * long / short)
    size = (224, new_long) if width <= height else (new_long, 224)
    resized = image.convert("RGB").resize(size, Image.BICUBIC)
    left, top = int(round((resized.width - 224) / 2)), int(round((resized.height - 224) / 2))
    pixels = np.asarray(resized.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255
    mean, std = np.array([0.48145466, 0.4578275, 0.40821073]), np.array([0.26862954, 0.26130258, 0.27577711])
    return ((pixels - mean) / std).transpose(2, 0, 1)


def test_imagebind_preprocessing_matches_the_reference_and_honours_exif(make_processor, tmp_path):
    processor = make_processor(tiny_config("embedding"))
    image = random_image(3, size=(300, 400))
    ours = processor.preprocess_images([image])[0].numpy()
    assert np.abs(ours - reference_imagebind_transform(image)).max() < 1e-4

    rotated_path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise on display
    image.save(rotated_path, exif=exif, quality=100)
    upright = Image.open(rotated_path).transpose(Image.Transpose.ROTATE_270)
    from_path = processor.preprocess_images([str(rotated_path)])[0].numpy()
    assert np.abs(from_path - reference_imagebind_transform(upright)).max() < 1e-4

    grey = Image.fromarray(np.full((50, 60), 128, dtype=np.uint8), mode="L")
    assert processor.preprocess_images([grey]).shape == (1, 3, 224, 224)


def test_unreadable_images_are_named_in_one_clear_error(make_processor, tmp_path):
    processor = make_processor(tiny_config("embedding"))
    with pytest.raises(ValueError, match=r"image not found: .*missing.png"):
        processor(text="<image> hi", images=[str(tmp_path / "missing.png")], return_tensors="pt")
    random_image(0).save(tmp_path / "whole.png")
    (tmp_path / "truncated.png").write_bytes((tmp_path / "whole.png").read_bytes()[:300])
    with pytest.raises(ValueError, match=r"image .*truncated.png cannot be read"):
        processor(text="<image> hi", images=[str(tmp_path / "truncated.png")], return_tensors="pt")


# The same prompt layout twice: for our processor (text content; structured parts are written as "<image>\n" + text)
# and for Llava's (structured content rendered by the template itself).
TEXT_CONTENT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
STRUCTURED_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{{ '\n' }}{% endfor %}"
)


@pytest.fixture
def ours_and_llava(tokenizer):
    from transformers import LlavaProcessor

    ours = NextGPTProcessor(imagebind_image_processor(), tokenizer, chat_template=TEXT_CONTENT_TEMPLATE)
    llava = LlavaProcessor(imagebind_image_processor(), tokenizer, patch_size=224, chat_template=STRUCTURED_TEMPLATE)
    return ours, llava


def structured_chat(seed: int, question: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image", "image": random_image(seed)},
                                         {"type": "text", "text": question}]}]


def same(ours, theirs) -> None:
    assert type(ours) is type(theirs)
    if isinstance(theirs, Mapping):
        assert set(ours) == set(theirs)
        for key in theirs:
            same(ours[key], theirs[key])
    elif isinstance(theirs, torch.Tensor):
        assert torch.equal(ours, theirs)
    elif isinstance(theirs, np.ndarray):
        assert np.array_equal(ours, theirs)
    elif isinstance(theirs, list) and theirs and isinstance(theirs[0], (np.ndarray, torch.Tensor, list)):
        assert len(ours) == len(theirs)
        for mine, other in zip(ours, theirs):
            same(mine, other)
    else:
        assert ours == theirs


@pytest.mark.parametrize("options", [
    {},
    {"tokenize": True},
    {"tokenize": True, "return_dict": True},
    {"tokenize": True, "return_dict": True, "return_tensors": "pt"},
    {"tokenize": True, "return_dict": True, "return_tensors": "pt", "processor_kwargs": {"padding": True}},
    {"tokenize": True, "return_dict": True, "add_generation_prompt": True, "documents": [{"text": "unused"}]},
], ids=["text", "ids", "dict", "tensors", "padded", "template-options"])
def test_apply_chat_template_answers_as_a_transformers_vlm_processor_does(ours_and_llava, options):
    ours, llava = ours_and_llava
    single = structured_chat(0, "What shape is it?")
    batch = [single, structured_chat(1, "And its colour, please?")]
    for conversation in (single, batch) if options.get("processor_kwargs") else (single,):
        same(ours.apply_chat_template(conversation, **options), llava.apply_chat_template(conversation, **options))


def test_the_call_takes_transformers_argument_order_and_typed_kwargs(ours_and_llava):
    ours, llava = ours_and_llava
    image, prompt = random_image(0), "user: <image>\nWhat shape is it?"
    same(ours(image, prompt), llava(image, prompt))  # images first, lists unless tensors are asked for
    same(ours(images=[image], text=[prompt], return_tensors="pt"), llava(images=[image], text=[prompt],
                                                                        return_tensors="pt"))
    small = {"size": {"shortest_edge": 112}, "crop_size": {"height": 112, "width": 112}}
    out = ours(image, prompt, images_kwargs=small, text_kwargs={"padding": "max_length", "max_length": 40},
               return_tensors="pt")
    assert out["pixel_values"].shape == (1, 3, 112, 112) and out["input_ids"].shape == (1, 40)
    for modality, refusal in (("videos", "this processor takes no video"), ("audio", "this processor takes no audio")):
        with pytest.raises(ValueError, match=refusal):
            ours(text=prompt, images=[image], **{modality: [np.zeros(16000)]})


def test_a_chat_template_passed_by_the_caller_is_used(ours_and_llava):
    ours, _ = ours_and_llava
    chat = structured_chat(0, "Which shape?")
    upper = "{{ messages[0]['content'] | upper }}"  # a text-content template: image parts become <image> lines
    assert ours.apply_chat_template(chat, chat_template=upper) == "<IMAGE>\nWHICH SHAPE?"
