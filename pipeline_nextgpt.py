"""`pipeline("visual-question-answering", model=folder, trust_remote_code=True)` for NextGPT.

transformers 5.x removed the built-in task; `config.custom_pipelines` maps the name to this class, shipped as remote
code next to the weights. Usage: `vqa(image=..., question=...)` -> `[{"answer": ...}]`; a model with an audio branch
also takes `audio=` (a file path or a list of them), with or without an image.
"""

from transformers import Pipeline

try:
    from .processing_nextgpt import media_list
except ImportError:
    from processing_nextgpt import media_list


class NextGPTVisualQuestionAnsweringPipeline(Pipeline):
    _load_processor = True
    _load_image_processor = None
    _load_tokenizer = None

    def __call__(self, image=None, question: str | None = None, audio=None, video=None, **kwargs):
        """`image=`/`question=` (and `audio=`, `video=`), or a dict with those keys, or a list of such dicts
        (answered one by one)."""
        inputs = kwargs.pop("inputs", None)
        if inputs is None:
            if (image is None and audio is None and video is None) or question is None:
                raise ValueError("Give image= (or audio=, video=) and question= (or a dict / list of dicts with those "
                                 "keys)")
            inputs = {"image": image, "question": question, "audio": audio, "video": video}
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, max_new_tokens: int | None = None, generate_kwargs: dict | None = None, **kwargs):
        forward_params = dict(generate_kwargs or {})
        forward_params.setdefault("max_new_tokens", max_new_tokens or 64)
        return {}, forward_params, {}

    def preprocess(self, inputs: dict):
        given = {key: inputs.get(key) for key in ("image", "audio", "video")} if isinstance(inputs, dict) else {}
        if not isinstance(inputs, dict) or "question" not in inputs or not any(v is not None for v in given.values()):
            raise ValueError(f"Each input must be a dict with 'question' and 'image' (or 'audio', 'video'), got "
                             f"{inputs!r}")
        image, audio, videos = given["image"], media_list(given["audio"]), media_list(given["video"])
        prompt = self.processor.question_with_placeholders(inputs["question"], num_images=int(image is not None),
                                                           num_audio=len(audio), num_videos=len(videos))
        text = self.processor.render([{"role": "user", "content": prompt}], add_generation_prompt=True)
        media = {key: items for key, items in (("audio", audio), ("videos", videos)) if items}
        return self.processor(text=text, images=None if image is None else [image], **media, return_tensors="pt")

    def _forward(self, model_inputs, **generate_kwargs):
        prompt_length = model_inputs["input_ids"].shape[1]
        # On CUDA the fast path (fast_generation.py) where it runs the model and the options; generate elsewhere.
        generated = self.model.generate_function_for(generate_kwargs)(**model_inputs, **generate_kwargs)
        return {"answer_ids": generated[:, prompt_length:]}

    def postprocess(self, model_outputs) -> list[dict]:
        answer = self.processor.tokenizer.decode(model_outputs["answer_ids"][0], skip_special_tokens=True)
        return [{"answer": answer.strip()}]


__all__ = ["NextGPTVisualQuestionAnsweringPipeline"]
