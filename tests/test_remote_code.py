"""save_pretrained -> a fresh Python process that never imports this repository -> Auto classes and the pipeline."""

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import REPO_ROOT, random_image, tiny_config, tiny_model

FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys, torch
    from PIL import Image
    from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor, pipeline

    folder, image_path = sys.argv[1], sys.argv[2]
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    generator = AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True)
    inputs = torch.load(folder + "/inputs.pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    torch.save(logits, folder + "/logits_fresh.pt")
    text = processor.render([{"role": "user", "content": "<image>\\nWhat is it?"}], add_generation_prompt=True)
    prompt = processor(text=text, images=[image_path], return_tensors="pt")
    ids = generator.generate(**prompt, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    vqa = pipeline("visual-question-answering", model=folder, trust_remote_code=True)
    answers = vqa(image=Image.open(image_path), question="What is it?", max_new_tokens=4)
    repo_modules = [m for m in ("modeling_nextgpt", "configuration_nextgpt", "processing_nextgpt") if m in sys.modules]
    print(json.dumps({
        "config": type(config).__module__, "model": type(model).__module__, "processor": type(processor).__name__,
        "generator": type(generator).__name__, "new_tokens": ids.shape[1] - prompt["input_ids"].shape[1],
        "answers": answers, "repo_modules": repo_modules,
    }))
    """
)


def minimum_transformers() -> str:
    """The lowest transformers version setup.cfg admits (its `transformers>=X` requirement)."""
    requirement = re.search(r"^\s*transformers>=([\w.]+)", (REPO_ROOT / "setup.cfg").read_text(), re.MULTILINE)
    return requirement.group(1)


@pytest.fixture(params=["installed", "minimum"])
def transformers_path(request, tmp_path_factory) -> str:
    """Where the fresh process finds transformers: the installed release (CI installs the newest), or the lowest one
    setup.cfg admits, installed beside it when the two differ, so both ends of the supported range are tested."""
    import transformers
    from packaging.version import Version

    if request.param == "installed":
        return ""
    minimum = minimum_transformers()
    if Version(transformers.__version__) == Version(minimum):
        pytest.skip(f"the installed transformers is the minimum setup.cfg admits ({minimum}): tested above")
    target = tmp_path_factory.mktemp(f"transformers_{minimum}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    f"transformers=={minimum}"], check=True, timeout=600)
    return str(target)


@pytest.mark.parametrize("image_mode", ["embedding", "patches"])
def test_fresh_process_loads_everything_through_remote_code(tmp_path, make_processor, image_mode, transformers_path):
    config = tiny_config(image_mode)
    model, processor = tiny_model(config), make_processor(config)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    image_path = tmp_path / "image.png"
    random_image(5).save(image_path)
    inputs = dict(processor(text="<image> describe", images=[str(image_path)], return_tensors="pt"))
    torch.save(inputs, folder / "inputs.pt")
    with torch.no_grad():
        logits = model(**inputs).logits

    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), PYTHONPATH=transformers_path)
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(folder), str(image_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["repo_modules"] == []
    assert report["config"].startswith("transformers_modules") and report["model"].startswith("transformers_modules")
    assert report["processor"] == "NextGPTProcessor" and report["generator"] == "NextGPTForConditionalGeneration"
    assert report["new_tokens"] == 4
    assert isinstance(report["answers"], list) and set(report["answers"][0]) == {"answer"}
    torch.testing.assert_close(torch.load(folder / "logits_fresh.pt"), logits)


def test_saved_folder_is_self_contained(tmp_path, make_processor):
    config = tiny_config("embedding")
    tiny_model(config).save_pretrained(tmp_path)
    make_processor(config).save_pretrained(tmp_path)
    for code_file in ("configuration_nextgpt.py", "modeling_nextgpt.py", "processing_nextgpt.py",
                      "imagebind_vision.py", "vision_tower.py", "pipeline_nextgpt.py", "fast_generation.py"):
        assert (tmp_path / code_file).is_file(), code_file
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["auto_map"]["AutoModel"] == "modeling_nextgpt.NextGPTForConditionalGeneration"
    assert "visual-question-answering" in saved["custom_pipelines"]
