"""One flag spelling works everywhere: the tools' parser takes --max_new_tokens and --max-new-tokens alike."""

import pytest

from cli import ArgumentParser
from inference import parse_args


def test_long_options_take_both_spellings_and_help_lists_one():
    parser = ArgumentParser("a tool")
    parser.add_argument("--max-new-tokens", type=int, default=1)
    parser.add_argument("--image_folder")
    assert parser.parse_args(["--max_new_tokens", "5", "--image-folder", "x"]).max_new_tokens == 5
    assert parser.parse_args(["--max-new-tokens", "6", "--image_folder", "y"]).image_folder == "y"
    assert "--max_new_tokens" not in parser.format_help() and "--max-new-tokens" in parser.format_help()
    # An abbreviation matches both spellings of one option: not ambiguous; of two options: still refused
    assert parser.parse_args(["--max", "4"]).max_new_tokens == 4
    parser.add_argument("--max_length", type=int)
    with pytest.raises(SystemExit):
        parser.parse_args(["--max", "4"])


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


def test_an_assembled_model_gets_a_card_with_its_parts_and_their_licences(tokenizer_dir, tmp_path):
    from huggingface_hub import ModelCard
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from assemble_nextgpt import main as assemble
    from conftest import tiny_text_config

    llm = tmp_path / "llm"
    LlamaForCausalLM(LlamaConfig(**tiny_text_config())).save_pretrained(llm)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(llm)
    (llm / "README.md").write_text("---\nlicense: llama2\n---\n# a tiny LLM\n")
    assert assemble(["--llm", str(llm), "--vision_tower", "efficientnet-lite0", "--output", str(tmp_path / "out")]) == 0
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert (card.data.pipeline_tag, card.data.library_name, card.data.license) == (
        "image-text-to-text", "transformers", "other")  # two licences: the card's table names each
    parts = card.data.to_dict()["nextgpt"]["parts"]
    assert (parts["llm"]["licence"], parts["vision_tower"]["licence"]) == ("llama2", "apache-2.0")
    assert "| language model | `" in card.text and "apply_chat_template" in card.text


@pytest.mark.parametrize("argv,message", [
    (["--max-new-tokens", "0"], "argument --max-new-tokens: must be 1 or more, got 0"),
    (["--batch-size", "x"], "argument --batch-size: must be an integer, got x"),
])
def test_counts_out_of_range_are_refused_with_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv + ["--image", "a.png", "hi"])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_eval_refuses_a_negative_limit_that_would_slice_from_the_end(capsys):
    from eval_vqa import main as eval_main

    with pytest.raises(SystemExit):
        eval_main(["--data", "records.json", "--limit", "-5"])
    assert "argument --limit: must be 1 or more, got -5" in capsys.readouterr().err
