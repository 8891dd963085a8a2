"""One flag spelling works everywhere: the tools' parser takes --max_new_tokens and --max-new-tokens alike."""

from cli import ArgumentParser
from inference import parse_args


def test_long_options_take_both_spellings_and_help_lists_one():
    parser = ArgumentParser("a tool")
    parser.add_argument("--max-new-tokens", type=int, default=1)
    parser.add_argument("--image_folder")
    assert parser.parse_args(["--max_new_tokens", "5", "--image-folder", "x"]).max_new_tokens == 5
    assert parser.parse_args(["--max-new-tokens", "6", "--image_folder", "y"]).image_folder == "y"
    assert "--max_new_tokens" not in parser.format_help() and "--max-new-tokens" in parser.format_help()


def test_inference_takes_train_hf_s_spelling():
    assert parse_args(["--max_new_tokens", "7", "--top_p", "0.5", "--image", "a.png", "hi"]).max_new_tokens == 7


def test_assemble_nextgpt_has_a_command_line_that_names_a_missing_folder():
    import subprocess
    import sys

    from conftest import REPO_ROOT

    script = str(REPO_ROOT / "assemble_nextgpt.py")
    usage = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 0 and "--vision_tower" in usage.stdout
    missing = subprocess.run([sys.executable, script, "--llm", "./no/such/llm", "--vision_tower", "efficientnet-lite0",
                              "--output", "unused"], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and missing.stderr.strip() == "error: --llm ./no/such/llm: no such folder"
