"""The shipped offline models (SmolLM2-135M + EfficientNet-Lite0 + weights/easy_vqa, and with Google's speech encoder
+ weights/spoken_shapes): assembly, answers, CLI."""

import json
import os
import subprocess
import sys

import torch
from transformers import AutoModel, AutoProcessor, pipeline

from conftest import REPO_ROOT
from convert_easy_vqa import convert
from default_model import default_model_folder, shipped_code_files
from eval_vqa import evaluate_vqa


def test_assembly_is_cached(default_folder, model_cache):
    config_time = os.path.getmtime(os.path.join(default_folder, "config.json"))
    assert default_model_folder(cache_dir=str(model_cache)) == default_folder
    assert os.path.getmtime(os.path.join(default_folder, "config.json")) == config_time
    assert not any(name.endswith(".partial") for name in os.listdir(model_cache))


def test_the_shipped_model_has_a_card(default_folder):
    from huggingface_hub import ModelCard

    card = ModelCard.load(os.path.join(default_folder, "README.md"))
    assert (card.data.license, card.data.pipeline_tag) == ("apache-2.0", "image-text-to-text")
    assert "EfficientNet-Lite0" in card.text
    results = json.load(open(os.path.join(REPO_ROOT, "weights", "easy_vqa", "results.json")))
    for name, scores in results.items():  # the card's figures are the ones measured beside the weights
        assert f"| {name} accuracy (%) | {100 * scores['accuracy']:.2f} |" in card.text


def test_the_cache_key_covers_every_code_file_the_model_ships(default_folder):
    """An edit to any shipped file (the fast decoder's kernels too) makes a new cached model, not a stale one."""
    shipped = {name for name in os.listdir(default_folder) if name.endswith(".py")}
    assert shipped == {os.path.basename(path) for path in shipped_code_files()}
    assert {"fast_decoder.py", "decode_kernels.py"} <= shipped


def test_answers_easy_vqa_test_questions(default_folder, tmp_path):
    convert(str(tmp_path))
    records = json.load(open(tmp_path / "test.json"))
    picked = [next(r for r in records[i * 500 :] if r["question_type"] == kind)
              for i, kind in enumerate(["shape", "colour", "yes/no", "yes/no", "colour", "shape", "yes/no", "colour",
                                        "yes/no", "shape"])]
    model = AutoModel.from_pretrained(default_folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(default_folder, trust_remote_code=True)
    results, answers = evaluate_vqa(model, processor, picked, batch_size=10, max_new_tokens=6)
    assert results["accuracy"] >= 0.9, list(zip(answers, [r["conversations"][1]["value"] for r in picked]))
    # The fast path on the real model (SmolLM2: grouped-query attention, tied embeddings), batched, gives the same.
    assert evaluate_vqa(model, processor, picked, batch_size=10, max_new_tokens=6, fast=True)[1] == answers


def test_pipeline_answers_about_the_bundled_image(default_folder):
    vqa = pipeline("visual-question-answering", model=default_folder, trust_remote_code=True)
    assert vqa(image=str(REPO_ROOT / "examples" / "red_circle.png"), question="what color is the shape?") == [
        {"answer": "red"}
    ]


def test_image_text_to_text_pipeline_takes_structured_chats(default_folder):
    chat = [{"role": "user", "content": [{"type": "image", "image": str(REPO_ROOT / "examples" / "red_circle.png")},
                                         {"type": "text", "text": "what shape is present?"}]}]
    generator = pipeline("image-text-to-text", model=default_folder, trust_remote_code=True)
    assert generator(text=chat, max_new_tokens=5, return_full_text=False)[0]["generated_text"] == "circle"


def run_inference(model_cache, *args):
    env = {**os.environ, "NANO_NEXTGPT_CACHE": str(model_cache)}
    return subprocess.run([sys.executable, "inference.py", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_inference_cli_answers_and_reports_bad_input_in_one_line(default_folder, model_cache, tmp_path):
    result = run_inference(model_cache, "--image", "examples/red_triangle.png", "What shape is in the image?")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "triangle"

    batch = tmp_path / "questions.jsonl"
    batch.write_text(json.dumps({"image": "examples/red_circle.png", "question": "what shape is present?"}) + "\n"
                     + json.dumps({"image": "examples/red_triangle.png", "question": "is there a red shape?"}) + "\n")
    result = run_inference(model_cache, "--batch", str(batch), "--output", str(tmp_path / "answers.jsonl"))
    assert result.returncode == 0, result.stderr[-2000:]
    answers = [json.loads(line)["answer"] for line in open(tmp_path / "answers.jsonl")]
    assert answers == ["circle", "yes"]

    chat = subprocess.run([sys.executable, "inference.py", "--image", "examples/red_triangle.png", "--chat"],
                          cwd=REPO_ROOT, env={**os.environ, "NANO_NEXTGPT_CACHE": str(model_cache)},
                          input="what shape is it?\nwhat color is it?\n\n", capture_output=True, text=True, timeout=300)
    assert chat.returncode == 0 and "triangle" in chat.stdout and "red" in chat.stdout

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"image": "examples/red_circle.png"}\n')
    for args, message in (
        (["--image", "missing.png", "hi"], "error: image not found: missing.png"),
        (["--batch", str(broken)], "line 1: expected"),
        (["--image", "README.md", "hi"], "image README.md does not decode"),
        (["--model", "outputs/stage2/final", "--image", "examples/red_circle.png", "hi"],
         "error: --model outputs/stage2/final: no such folder"),
    ):
        result = run_inference(model_cache, *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr


def test_fast_path_gives_generate_s_tokens_on_the_shipped_model(default_folder):
    model = AutoModel.from_pretrained(default_folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(default_folder, trust_remote_code=True)
    processor.tokenizer.padding_side = "left"
    model.generation_config.eos_token_id = None  # run past the answers: 24 tokens of free text
    questions = ["What shape is in the image?", "Is the shape in the image blue, or is it some other colour?"]
    prompts = [processor.render([{"role": "user", "content": f"<image>\n{question}"}], add_generation_prompt=True)
               for question in questions]
    images = [str(REPO_ROOT / "examples" / name) for name in ("red_triangle.png", "red_circle.png")]
    inputs = processor(text=prompts, images=images, padding=True, return_tensors="pt")
    reference = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    assert torch.equal(model.fast_generate(**inputs, max_new_tokens=24), reference)


def test_export_guards_the_shipped_weights_and_clears_the_superseded_cache(tmp_path):
    import shutil

    import pytest

    from default_model import DEFAULT_WEIGHTS, cached_folder, export_weights

    final = tmp_path / "final"
    final.mkdir()
    adapter = json.load(open(os.path.join(DEFAULT_WEIGHTS, "adapter_config.json")))
    json.dump({**adapter, "note": "retrained"}, open(final / "adapter_config.json", "w"))
    shutil.copy(os.path.join(DEFAULT_WEIGHTS, "adapter_model.safetensors"), final / "adapter_model.safetensors")
    (final / "config.json").write_text(json.dumps({"image_mode": "patches", "projector_type": "mlp2x_gelu",
                                                   "vision_config": {"stem_features": True,
                                                                     "stem_max_features": True}}))
    with pytest.raises(ValueError, match="replaces the shipped weights: pass --replace_shipped"):
        export_weights(str(final))
    with pytest.raises(ValueError, match="not an unmerged stage-2 folder"):
        export_weights(str(tmp_path), str(tmp_path / "elsewhere"))

    weights, cache = tmp_path / "weights", tmp_path / "cache"
    shutil.copytree(DEFAULT_WEIGHTS, weights)
    superseded = cached_folder(str(cache), str(weights))
    os.makedirs(superseded)
    export_weights(str(final), str(weights), cache_dir=str(cache))
    assert json.load(open(weights / "adapter_config.json"))["note"] == "retrained"
    recipe = json.load(open(weights / "recipe.json"))
    assert (recipe["model"], recipe["vision_tower"]) == ("easy-vqa", "efficientnet-lite0-stem-max")
    assert "audio_tower" not in recipe
    assert not os.path.exists(weights / "results.json")  # measured on the replaced weights
    assert not os.path.exists(superseded) and cached_folder(str(cache), str(weights)) != superseded

    config = json.loads((final / "config.json").read_text())
    (final / "config.json").write_text(json.dumps({**config, "audio_config": {"model_type": "speech_embedding"}}))
    export_weights(str(final), str(weights), cache_dir=str(cache))  # a model that hears: the spoken-shapes recipe
    recipe = json.load(open(weights / "recipe.json"))
    assert (recipe["model"], recipe["audio_tower"]) == ("spoken-shapes", "speech_embedding")
    (final / "config.json").write_text(json.dumps({**config, "audio_config": {"model_type": "imagebind_audio"}}))
    with pytest.raises(ValueError, match="imagebind_audio tower, which does not install offline"):
        export_weights(str(final), str(weights), cache_dir=str(cache))
    (final / "config.json").write_text(json.dumps({**config, "audio_config": {"model_type": "speech_embedding"}}))
    with pytest.raises(ValueError, match="replaces the shipped weights"):  # any folder of weights/
        export_weights(str(final), os.path.join(REPO_ROOT, "weights", "spoken_shapes"))


def test_the_shipped_spoken_model_hears_and_sees(model_cache, tmp_path):
    """The second shipped model by name (--model spoken-shapes): a colour said in a voice it never trained on, the
    picture's colour, and both together; its card names its data."""
    from huggingface_hub import ModelCard

    from default_model import shipped_model_folder

    folder = shipped_model_folder("spoken-shapes", cache_dir=str(model_cache))
    assert "spoken easy-VQA" in ModelCard.load(os.path.join(folder, "README.md")).text
    for args, answer in ((["--audio", "examples/spoken_blue.wav", "What colour do you hear?"], "blue"),
                         (["--image", "examples/red_circle.png", "What colour is the shape?"], "red"),
                         (["--image", "examples/red_circle.png", "--audio", "examples/spoken_blue.wav",
                           "Is the spoken colour the colour of the shape?"], "no")):
        result = run_inference(model_cache, "--model", "spoken-shapes", *args)
        assert result.returncode == 0 and result.stdout.strip() == answer, (args, result.stdout, result.stderr[-2000:])
