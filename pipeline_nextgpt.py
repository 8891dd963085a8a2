"""`pipeline("visual-question-answering", model=folder, trust_remote_code=True)` for NextGPT.

transformers 5.x removed the built-in task; `config.custom_pipelines` maps the name to this class, shipped as remote
code next to the weights. Usage: `vqa(image=..., question=...)` -> `[{"answer": ...}]`.
"""

from transformers import Pipeline


class NextGPTVisualQuestionAnsweringPipeline(Pipeline):
    _load_processor = True
    _load_image_processor = None
    _load_tokenizer = None

    def __call__(self, image=None, question: str | None = None, **kwargs):
        """`image=`/`question=`, or a dict with those keys, or a list of such dicts (answered one by one)."""
        inputs = kwargs.pop("inputs", None)
        if inputs is None:
            if image is None or question is None:
                raise ValueError("Give both image= and question= (or a dict / list of dicts with those keys)")
            inputs = {"image": image, "question": question}
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, max_new_tokens: int | None = None, generate_kwargs: dict | None = None, **kwargs):
        forward_params = dict(generate_kwargs or {})
        forward_params.setdefault("max_new_tokens", max_new_tokens or 64)
        return {}, forward_params, {}

    def preprocess(self, inputs: dict):
        if not isinstance(inputs, dict) or {"image", "question"} - inputs.keys():
            raise ValueError(f"Each input must be a dict with 'image' and 'question', got {inputs!r}")
        prompt = f"{self.processor.image_token}\n{inputs['question']}"
        text = self.processor.render([{"role": "user", "content": prompt}], add_generation_prompt=True)
        return self.processor(text=text, images=[inputs["image"]], return_tensors="pt")

    def _forward(self, model_inputs, **generate_kwargs):
        prompt_length = model_inputs["input_ids"].shape[1]
        # On CUDA the fast path (fast_generation.py) where it runs the model and the options; generate elsewhere.
        generated = self.model.generate_function_for(generate_kwargs)(**model_inputs, **generate_kwargs)
        return {"answer_ids": generated[:, prompt_length:]}

    def postprocess(self, model_outputs) -> list[dict]:
        answer = self.processor.tokenizer.decode(model_outputs["answer_ids"][0], skip_special_tokens=True)
        return [{"answer": answer.strip()}]


__all__ = ["NextGPTVisualQuestionAnsweringPipeline"]
