"""NextGPT processor: chat template, image placeholder expansion, image preprocessing and training labels."""

import os
import re
from collections.abc import Sequence

import torch
from transformers import AutoProcessor, BatchFeature, CLIPImageProcessorPil, ProcessorMixin
from transformers.processing_utils import ProcessingKwargs, Unpack
from transformers.image_utils import load_image
from transformers.tokenization_utils_base import AddedToken

try:
    from .audio_features import audio_features, load_audio
    from .speech_embedding import speech_features
    from .configuration_nextgpt import NextGPTConfig
    from .video_features import video_features
except ImportError:
    from audio_features import audio_features, load_audio
    from speech_embedding import speech_features
    from configuration_nextgpt import NextGPTConfig
    from video_features import video_features

# Llama-2-chat's template, used when the tokenizer brings none (the original NextGPT prompt format).
LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% set system = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}"
    "{% set messages = messages[1:] %}{% else %}{% set system = '' %}{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + (system if loop.first else '') "
    "+ message['content'].strip() + ' [/INST]' }}"
    "{% else %}{{ ' ' + message['content'].strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)
IGNORE_INDEX = -100
# The order of the placeholders a question's images, videos and audio get before its text, as training lays them out.
PLACEHOLDER_ORDER = ("image", "video", "audio")
# A chat template that reads message parts itself: it looks at a part's type or text.
TEMPLATE_READS_PARTS = re.compile(r"""\[\s*['"](type|text)['"]\s*\]|\.(type|text)\b""")


class NextGPTProcessorKwargs(ProcessingKwargs, total=False):
    _defaults = {"text_kwargs": {"padding": False}}


class NextGPTProcessor(ProcessorMixin):
    r"""
    Pairs an image processor (ImageBind's preprocessing for the ImageBind tower, the tower's own otherwise) with a
    tokenizer. Each `image_token` in the text becomes `num_image_tokens` placeholder tokens, which the model overwrites
    with projected image tokens.

    Args:
        image_processor: e.g. `CLIPImageProcessor` set up as ImageBind's (see `imagebind_image_processor`).
        tokenizer: the LLM's tokenizer; `image_token` is added to it as a special token if missing.
        chat_template: defaults to the tokenizer's, else Llama-2-chat's.
        image_token: the placeholder users write in prompts and data (LLaVA's `<image>`).
        num_image_tokens: LLM positions per image (`NextGPTConfig.num_image_tokens`).
        audio_token: for a model with an audio branch, the placeholder of one audio clip (e.g. `<audio>`; one LLM
            position each, `NextGPTConfig.audio_token_id`); None (the default) takes no audio.
        video_token: for a model that takes video (`NextGPTConfig.video_token_id`), the placeholder of one video
            (e.g. `<video>`), written `num_video_tokens` times (`NextGPTConfig.num_video_tokens`); None takes none.
        speech_clip_seconds: for a model whose audio tower is the speech encoder (`speech_embedding`), the clip
            length it takes (its config's `clip_seconds`); None (the default) prepares audio as ImageBind does.
    """

    valid_processor_kwargs = NextGPTProcessorKwargs

    def __init__(
        self, image_processor=None, tokenizer=None, chat_template=None, image_token="<image>", num_image_tokens=1,
        audio_token: str | None = None, video_token: str | None = None, num_video_tokens: int = 1,
        speech_clip_seconds: float | None = None,
    ):
        for token in filter(None, (image_token, audio_token, video_token)):
            if token not in tokenizer.get_vocab():
                tokenizer.add_tokens([AddedToken(token, special=True, normalized=False)], special_tokens=True)
        self.image_token = image_token
        self.num_image_tokens = num_image_tokens
        self.audio_token = audio_token
        self.video_token = video_token
        self.num_video_tokens = num_video_tokens
        self.speech_clip_seconds = speech_clip_seconds
        chat_template = chat_template or getattr(tokenizer, "chat_template", None) or LLAMA2_CHAT_TEMPLATE
        super().__init__(image_processor, tokenizer, chat_template=chat_template)

    @property
    def image_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.image_token)

    @property
    def audio_token_id(self) -> int | None:
        return self.tokenizer.convert_tokens_to_ids(self.audio_token) if self.audio_token else None

    @property
    def video_token_id(self) -> int | None:
        return self.tokenizer.convert_tokens_to_ids(self.video_token) if self.video_token else None

    def question_with_placeholders(self, question: str, num_images: int = 0, num_audio: int = 0,
                                   num_videos: int = 0) -> str:
        """A question asked about images, videos and audio: their placeholders first (images, videos, then audio),
        each on its own line, as training puts them."""
        if num_audio and not self.audio_token:
            raise ValueError("this model takes no audio (its processor has no audio token: no audio branch)")
        if num_videos and not self.video_token:
            raise ValueError("this model takes no video (its processor has no video token)")
        tokens = {"image": (self.image_token, num_images), "video": (self.video_token, num_videos),
                  "audio": (self.audio_token, num_audio)}
        placeholders = [tokens[kind][0] for kind in PLACEHOLDER_ORDER for _ in range(tokens[kind][1])]
        return "".join(f"{placeholder}\n" for placeholder in placeholders) + question

    def preprocess_audio(self, audio: list) -> torch.Tensor:
        """Audio file paths, or (channels, samples) waveforms at 16 kHz -> (num_audio, clips, 1, mel_bins, frames):
        ImageBind's preprocessing (`audio_features.py`; files need the `audio` extra), or (num_audio, 1, samples):
        one clip of `speech_clip_seconds` for the speech encoder (`speech_embedding.speech_features`). Errors name
        the file."""
        waveforms = [load_audio(item) if isinstance(item, (str, os.PathLike)) else item for item in audio]
        if self.speech_clip_seconds:
            return torch.stack([speech_features(waveform, self.speech_clip_seconds) for waveform in waveforms])
        return torch.stack([audio_features(waveform) for waveform in waveforms])

    def preprocess_videos(self, videos: list) -> torch.Tensor:
        """Video file paths, or `video_features.video_features` outputs -> (num_videos, clips, 3, 2, 224, 224):
        ImageBind's clip sampling (files need the `video` extra). Errors name the file."""
        return torch.stack([video_features(item) if isinstance(item, (str, os.PathLike)) else item for item in videos])

    def expand_placeholders(self, text: str) -> str:
        """Each image (video) placeholder written as many times as the image (video) takes LLM positions."""
        text = text.replace(self.image_token, self.image_token * self.num_image_tokens)
        return text.replace(self.video_token, self.video_token * self.num_video_tokens) if self.video_token else text

    def render(self, messages: list[dict], add_generation_prompt: bool = False, **template_kwargs) -> str:
        """The chat template applied to LLaVA-style messages (`content` is a string with `<image>` placeholders)."""
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.chat_template, tokenize=False, add_generation_prompt=add_generation_prompt,
            **template_kwargs,
        )

    def apply_chat_template(self, conversation: list[dict] | list[list[dict]], chat_template: str | None = None,
                            **kwargs):
        """`ProcessorMixin.apply_chat_template`, with all its arguments (tools, documents, tokenize, return_dict,
        return_assistant_tokens_mask, processor_kwargs, ...). A template that reads message parts itself (it looks at
        a part's `type` or `text`) gets the messages as they are. For one that expects text content, as Llama-2-chat's
        and most LLMs' do, structured image parts (`{"type": "image", "image"|"url"|"path": ...}`, or OpenAI's
        `image_url`) are written as `image_token` placeholders on a line before the message's text, as training laid
        them out, and handed to the processor as its images; audio parts (`{"type": "audio", "audio": path or 16 kHz
        waveform}`) and video parts (`{"type": "video", "video": path}`) likewise as `audio_token` / `video_token`
        lines, their audio and videos then given to `__call__` (which needs `tokenize=True` with `return_dict=True`,
        or `tokenize=False`). LLaVA-style string content passes as is."""
        if TEMPLATE_READS_PARTS.search(self._resolve_chat_template(chat_template)):
            return super().apply_chat_template(conversation, chat_template=chat_template, **kwargs)
        conversations, batched = self._normalize_conversations(conversation)
        rendered, images, audio, videos = [], [], [], []
        for chat in conversations:
            messages, chat_images = [], []
            for message in chat:
                content = message.get("content")
                if isinstance(content, list):
                    parts = []
                    for part in content:
                        if part.get("type") == "image":
                            chat_images += [part[key] for key in ("image", "url", "path", "base64") if key in part]
                            parts.append(self.image_token)
                        elif part.get("type") == "audio" and self.audio_token:
                            audio += [part[key] for key in ("audio", "path") if key in part]
                            parts.append(self.audio_token)
                        elif part.get("type") == "video" and self.video_token:
                            videos += [part[key] for key in ("video", "path") if key in part]
                            parts.append(self.video_token)
                        elif part.get("type") == "text":
                            parts.append(part["text"])
                        else:
                            kinds = ["text", "images"] + ["audio"] * bool(self.audio_token) + ["videos"] * bool(
                                self.video_token)
                            takes = ", ".join(kinds[:-1]) + " and " + kinds[-1]
                            raise ValueError(f"unsupported message part {part.get('type')!r}: this model takes {takes}")
                    content = "\n".join(parts)
                messages.append({**message, "content": content})
            rendered.append(messages)
            images.append(chat_images)
        processor_kwargs = dict(kwargs.pop("processor_kwargs", None) or {})
        if any(images):
            processor_kwargs["images"] = images if batched else images[0]
        if not audio and not videos:
            return super().apply_chat_template(rendered if batched else rendered[0], chat_template=chat_template,
                                               processor_kwargs=processor_kwargs, **kwargs)
        # The base method hands audio and videos only from the parts it sees itself: render the text, then call the
        # processor.
        tokenize, return_dict = kwargs.pop("tokenize", False), kwargs.pop("return_dict", False)
        return_tensors = kwargs.pop("return_tensors", None)
        text = super().apply_chat_template(rendered if batched else rendered[0], chat_template=chat_template,
                                           tokenize=False, **kwargs)
        if not tokenize:
            return text
        if not return_dict:
            raise ValueError("a conversation with audio or video tokenizes with return_dict=True (their features are "
                             "returned beside the token ids)")
        return self(text=text, audio=audio or None, videos=videos or None, return_tensors=return_tensors,
                    **processor_kwargs)

    def save_pretrained(self, *args, **kwargs):
        """`ProcessorMixin.save_pretrained`, which leaves the remote-code `auto_map` it writes on the instance too:
        removed again, so that `to_dict()` is the same before a save and after a load."""
        try:
            return super().save_pretrained(*args, **kwargs)
        finally:
            self.__dict__.pop("auto_map", None)

    def preprocess_images(self, images) -> torch.Tensor:
        """Paths, URLs or PIL images -> (num_images, 3, H, W); EXIF orientation and RGB conversion via `load_image`.
        An image that cannot be read is a ValueError naming it (a missing file, not a base64 "Incorrect padding")."""
        return self.image_processor([read_image(image) for image in images], return_tensors="pt")["pixel_values"]

    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        return self.image_token * self.num_image_tokens

    def __call__(self, images=None, text: str | list[str] | None = None, videos=None, audio=None,
                 image_embeds: torch.Tensor | None = None, **kwargs: Unpack[ProcessingKwargs]) -> BatchFeature:
        """transformers' processor call: prompts with one `image_token` per image (images in reading order across
        the batch: a list, or one list per prompt), image options in `images_kwargs`, tokenizer options in
        `text_kwargs` (or as plain keywords), `return_tensors` as you ask. `image_embeds` (cached tower outputs, one
        row per image) may stand in for `images`. With an `audio_token`, `audio` (file paths or 16 kHz waveforms,
        one per `audio_token`, in reading order) becomes `input_features`. Prompts that begin with the BOS token
        (chat-template output) get no second BOS."""
        if images is not None and image_embeds is not None:
            raise ValueError("Pass images or image_embeds, not both")
        if videos is not None and not self.video_token:
            raise ValueError("this processor takes no video (no video_token: the model takes no video)")
        if audio is not None and not self.audio_token:
            raise ValueError("this processor takes no audio (no audio_token: the model has no audio branch)")
        if text is None:
            raise ValueError("text is required: a prompt with one image_token per image")
        texts = [text] if isinstance(text, str) else list(text)
        audio, videos = media_list(audio), media_list(videos)
        for token, items, noun in ((self.audio_token, audio, "audio clips"), (self.video_token, videos, "videos")):
            counts = [prompt.count(token) for prompt in texts] if token else []
            if token and sum(counts) != len(items):
                raise ValueError(f"The prompts have {sum(counts)} {token} placeholders (per prompt: {counts}) but "
                                 f"{len(items)} {noun} were given")
        return self._text_and_images(texts, images, image_embeds, audio, videos, **kwargs)

    def _text_and_images(self, texts: list[str], images, image_embeds: torch.Tensor | None, audio: list,
                         videos: list, **kwargs) -> BatchFeature:
        images = [read_image(image) for image in flatten_images(images)]
        num_placeholders = [prompt.count(self.image_token) for prompt in texts]
        num_images = len(images) if image_embeds is None else image_embeds.shape[0]
        if sum(num_placeholders) != num_images:
            raise ValueError(
                f"The prompts have {sum(num_placeholders)} {self.image_token} placeholders (per prompt: "
                f"{num_placeholders}) but {num_images} images were given"
            )
        bos = self.tokenizer.bos_token
        if "add_special_tokens" not in kwargs and "add_special_tokens" not in kwargs.get("text_kwargs", {}):
            kwargs["add_special_tokens"] = not (bos and all(prompt.startswith(bos) for prompt in texts))
        if image_embeds is None and not audio and not videos:
            return super().__call__(images=images or None, text=texts, **kwargs)
        # Cached image features, audio or video: the base class would ask feature extractors this processor has not,
        # so text and images are processed here, as it would.
        merged = self._merge_kwargs(tokenizer_init_kwargs=self.tokenizer.init_kwargs, **kwargs)
        features = dict(self.tokenizer([self.expand_placeholders(t) for t in texts], **merged["text_kwargs"]))
        if image_embeds is not None:
            features["image_embeds"] = image_embeds
        elif images:
            features["pixel_values"] = self.image_processor(images, **merged["images_kwargs"])["pixel_values"]
        if audio:
            features["input_features"] = self.preprocess_audio(audio)
        if videos:
            features["pixel_values_videos"] = self.preprocess_videos(videos)
        return BatchFeature(features, tensor_type=merged["text_kwargs"].get("return_tensors"))

    def tokenize_conversation(self, messages: list[dict], num_images: int, max_length: int | None = None,
                              num_audio: int = 0, num_videos: int = 0) -> dict:
        """One conversation -> `input_ids`, `attention_mask` and `labels` (lists), checked against `num_images` (and
        `num_audio`, `num_videos`, for a processor with those tokens).

        Labels are -100 everywhere except each assistant reply and its end-of-turn token. The reply spans are found by
        rendering the template up to each reply, so prompt and labels come from the same template and cannot drift
        apart. Past `max_length`, only the end of the last reply may be cut; anything else raises ValueError.
        """
        num_placeholders = sum(message["content"].count(self.image_token) for message in messages)
        if num_placeholders != num_images:
            raise ValueError(
                f"The conversation has {num_placeholders} {self.image_token} placeholders but {num_images} images"
            )
        for token, count, noun in ((self.audio_token, num_audio, "audio files"), (self.video_token, num_videos,
                                                                                  "videos")):
            placeholders = sum(message["content"].count(token) for message in messages) if token else 0
            if placeholders != count:
                raise ValueError(f"The conversation has {placeholders} {token} placeholders but {count} {noun}" if token
                                 else f"this processor takes no {noun.split()[0]}")
        expanded = [{**message, "content": self.expand_placeholders(message["content"])} for message in messages]
        text, spans = self.render(expanded), []
        for index, message in enumerate(expanded):
            if message["role"] != "assistant":
                continue
            prompt = self.render(expanded[:index], add_generation_prompt=True)
            upto_reply = self.render(expanded[: index + 1])
            if not (upto_reply.startswith(prompt) and text.startswith(upto_reply)):
                raise ValueError("The chat template does not render a conversation as a prefix of its continuation")
            reply = upto_reply[len(prompt) :]
            spans.append((len(prompt) + len(reply) - len(reply.lstrip()), len(prompt) + len(reply.rstrip())))
        if not spans:
            raise ValueError("The conversation has no assistant reply to learn from")

        bos = self.tokenizer.bos_token
        encoding = self.tokenizer(
            text, return_offsets_mapping=True, add_special_tokens=not (bos and text.startswith(bos))
        )
        input_ids = encoding["input_ids"]
        labels = [
            token if any(start < span_end and end > span_start for span_start, span_end in spans) else IGNORE_INDEX
            for token, (start, end) in zip(input_ids, encoding["offset_mapping"])
        ]
        if max_length is not None and len(input_ids) > max_length:
            offsets = encoding["offset_mapping"]
            last_reply_start = next(i for i, (start, end) in enumerate(offsets) if end > spans[-1][0])
            if last_reply_start >= max_length:
                raise ValueError(
                    f"The conversation is {len(input_ids)} tokens and its last reply starts at token "
                    f"{last_reply_start}, "
                    f"past max_length={max_length}: only the end of the last reply may be truncated"
                )
            input_ids, labels = input_ids[:max_length], labels[:max_length]
        return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}

    def build_training_example(
        self, messages: list[dict], images=None, image_embeds: torch.Tensor | None = None, max_length: int | None = None
    ) -> dict:
        """`tokenize_conversation` plus `pixel_values` (from `images`) or the given `image_embeds`."""
        images = flatten_images(images)
        num_images = len(images) if image_embeds is None else image_embeds.shape[0]
        example = self.tokenize_conversation(messages, num_images, max_length)
        if image_embeds is not None:
            example["image_embeds"] = image_embeds
        elif images:
            example["pixel_values"] = self.preprocess_images(images)
        return example

    @property
    def model_input_names(self) -> list[str]:
        # Text first: the Trainer's length-grouped samplers (batch_rebalance) measure examples by the first name.
        return self.tokenizer.model_input_names + self.image_processor.model_input_names


def media_list(items) -> list:
    """`audio=` or `videos=` as a list: None is none, a path or one tensor (a waveform, a video's clips) is one,
    anything else is a sequence of them."""
    if items is None:
        return []
    return [items] if isinstance(items, (str, os.PathLike, torch.Tensor)) else list(items)


def read_image(image):
    """`load_image`, with the image named in its errors. A string with a dot that is no URL is a path (base64 has no
    dots), so a missing one is reported as such."""
    if isinstance(image, str) and "." in image and not image.startswith(("http://", "https://", "data:")):
        if not os.path.isfile(image):
            raise ValueError(f"image not found: {image}")
    try:
        return load_image(image)
    except Exception as error:  # truncated or damaged files, unreadable URLs, bad base64
        name = image if isinstance(image, str) and len(image) < 200 else type(image).__name__
        raise ValueError(f"image {name} cannot be read: {error}") from None


def flatten_images(images) -> list:
    """None, one image, a list of images or one list per prompt -> a flat list in reading order."""
    if images is None:
        return []
    if not isinstance(images, Sequence) or isinstance(images, str):
        return [images]
    return [image for item in images for image in (item if isinstance(item, (list, tuple)) else [item])]


def imagebind_image_processor(image_size: int = 224) -> CLIPImageProcessorPil:
    """ImageBind's preprocessing: resize the short side to 224 (PIL bicubic, as torchvision does on PIL images),
    centre crop, CLIP mean/std."""
    return CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}, resample=3
    )


NextGPTProcessor.register_for_auto_class("AutoProcessor")
AutoProcessor.register(NextGPTConfig, NextGPTProcessor, exist_ok=True)

__all__ = ["NextGPTProcessor", "imagebind_image_processor", "LLAMA2_CHAT_TEMPLATE", "PLACEHOLDER_ORDER"]
