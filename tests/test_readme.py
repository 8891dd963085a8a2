"""The README's offline tiny setup, run as written, in order, on a small slice: convert easy-VQA, both training
stages, evaluation, export; then the exported weights are assembled and answer a question.

The commands come from the README itself (the bash block of "The offline tiny setup"), so a change there that breaks
the path a newcomer follows breaks this test. Only what makes it small changes: each stage trains on the first 8
records for 2 steps, the evaluation reads 4 questions, and the export writes to a temporary folder instead of the
shipped weights.
"""

import re
import subprocess
import sys

from conftest import REPO_ROOT

SHRINK = {
    "train_hf.py": " --max_train_samples 8 --max_steps 2 --per_device_train_batch_size 4 --report_to none"
                   " --dataloader_num_workers 0 --embedding_cache_dir {tmp}/embeds",
    "eval_vqa.py": " --limit 4 --max_new_tokens 4",
}


def tiny_setup_commands() -> list[str]:
    """The README's tiny-setup block as single-line commands (continuations joined, comments dropped)."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### The offline tiny setup"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    return [line.split("   #")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_tiny_setup_runs_end_to_end(tmp_path):
    commands = tiny_setup_commands()
    assert commands[0] == ". .venv/bin/activate" and any("default_model.py --export" in c for c in commands)
    script = []
    for command in commands[1:]:  # the environment is this test's own
        command = re.sub(r"^python (\w+\.py)", rf"{sys.executable} {REPO_ROOT}/\1", command)
        command = command.replace("$(python ", f"$({sys.executable} ")
        for tool, extra in SHRINK.items():
            if f"/{tool}" in command:
                command += extra.format(tmp=tmp_path)
        command = command.replace("--replace_shipped", f"--weights {tmp_path}/weights")
        script.append(command)
    script.append(f"{sys.executable} {REPO_ROOT}/default_model.py --weights {tmp_path}/weights "
                  f"--output {tmp_path}/assembled")
    script.append(f"{sys.executable} {REPO_ROOT}/inference.py --model {tmp_path}/assembled --image "
                  f"{REPO_ROOT}/examples/red_triangle.png --max-new-tokens 4 'What shape is in the image?'")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(script)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    for stage in ("easy_stage1", "easy_stage2"):
        assert (tmp_path / "outputs" / stage / "final" / "README.md").is_file()
        assert (tmp_path / "outputs" / stage / "loss_curve.png").stat().st_size > 1000
    assert "accuracy" in result.stdout  # eval_vqa's report
    assert (tmp_path / "weights" / "adapter_model.safetensors").is_file()
    assert result.stdout.strip().splitlines()[-1].strip()  # the assembled model answered something
