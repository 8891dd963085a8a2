"""train_hf.py on tiny random models and easy-VQA data: stages, freezing, cache, bad records, resume, outputs."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import HfArgumentParser, TrainerCallback, TrainingArguments

from conftest import REPO_ROOT, tiny_config, tiny_model
from convert_easy_vqa import convert
from processing_nextgpt import NextGPTProcessor, imagebind_image_processor
from train_hf import (NextGPTArguments, apply_fused_kernels, apply_liger_kernels, cpu_threads, frozen_weights_dtype,
                      train)
from training_data import BadRecordsError

COMMON = ["--report_to", "none", "--logging_steps", "1", "--per_device_train_batch_size", "2", "--seed", "7",
          "--dataloader_num_workers", "0", "--disable_tqdm", "true"]


@pytest.fixture(scope="session")
def easy_vqa_data(tmp_path_factory):
    """Small slices of the converted easy-VQA data."""
    folder = tmp_path_factory.mktemp("easy_vqa")
    convert(str(folder / "full"))
    captions = [json.loads(line) for line in open(folder / "full" / "stage1_captions.jsonl")][:8]
    with open(folder / "captions.jsonl", "w") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in captions)
    conversations = json.load(open(folder / "full" / "stage2_train.json"))[:4]
    for record in conversations:  # keep them short: four turns each
        record["conversations"] = record["conversations"][:4]
    json.dump(conversations, open(folder / "conversations.json", "w"))
    json.dump(json.load(open(folder / "full" / "test.json"))[:6], open(folder / "test.json", "w"))
    return folder


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory, tokenizer_dir):
    """A tiny random NextGPT (one image token) with SmolLM2's tokenizer, saved as a stage-0 starting point."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny_nextgpt")
    config = tiny_config("embedding")
    tiny_model(config).save_pretrained(folder)
    NextGPTProcessor(imagebind_image_processor(), AutoTokenizer.from_pretrained(tokenizer_dir)).save_pretrained(folder)
    return folder


def weights(folder) -> dict[str, torch.Tensor]:
    return load_file(os.path.join(folder, "model.safetensors"))


def changed(before: dict, after: dict) -> set[str]:
    assert before.keys() == after.keys()
    return {key for key in before if not torch.equal(before[key], after[key])}


def losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def run_stage1(tiny_folder, easy_vqa_data, output_dir, *extra) -> object:
    return train(["--stage", "1", "--model_name_or_path", str(tiny_folder), "--data_path",
                  str(easy_vqa_data / "captions.jsonl"), "--output_dir", str(output_dir), "--max_steps", "3",
                  "--learning_rate", "1e-2", *COMMON, *extra])


@pytest.fixture(scope="session")
def stage1_folder(tiny_folder, easy_vqa_data, tmp_path_factory):
    output = tmp_path_factory.mktemp("stage1")
    run_stage1(tiny_folder, easy_vqa_data, output)
    return output / "final"


def test_stage1_trains_only_the_projector_and_writes_outputs(tiny_folder, stage1_folder):
    projector = {"projector.linear_1.weight", "projector.linear_1.bias"}
    assert changed(weights(tiny_folder), weights(stage1_folder)) == projector
    output_dir = stage1_folder.parent
    assert (output_dir / "loss_curve.png").stat().st_size > 1000
    assert not (output_dir / "final.partial").exists()
    assert (stage1_folder / "modeling_nextgpt.py").is_file() and (stage1_folder / "processor_config.json").is_file()


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "adapter"])
def test_stage2_lora_changes_projector_and_attention_only(stage1_folder, easy_vqa_data, tmp_path, merge):
    trainer = train(["--train_instruct", "--model_name_or_path", str(stage1_folder), "--data_path",
                     str(easy_vqa_data / "conversations.json"), "--output_dir", str(tmp_path), "--max_steps", "2",
                     "--lora_r", "4", "--learning_rate", "1e-2", *COMMON, *(["--merge_lora"] if merge else [])])
    final = tmp_path / "final"
    diff = changed(weights(stage1_folder), weights(final))
    assert {"projector.linear_1.weight", "projector.linear_1.bias"} <= diff
    assert (final / "adapter_config.json").exists() != merge
    if merge:
        attention = {key for key in diff if key.startswith("language_model.")}
        assert attention and all(key.split(".")[-2] in {"q_proj", "k_proj", "v_proj", "o_proj"} for key in attention)
    else:
        assert not any(key.startswith("language_model.") for key in diff)
    assert not any(key.startswith("vision_tower.") for key in diff)
    # Its card carries stage 1's record (from the starting folder's card) and adds this run's.
    from huggingface_hub import ModelCard

    card = ModelCard.load(final / "README.md")
    assert (card.data.pipeline_tag, card.data.library_name) == ("image-text-to-text", "transformers")
    stages = card.data.to_dict()["nextgpt"]["training"]
    assert [record["stage"] for record in stages] == [1, 2] and stages[1]["steps"] == 2
    assert ("merged" if merge else "adapter beside the base model") in stages[1]["method"]
    assert stages[1]["hyperparameters"]["lora_r"] == 4 and "### Stage 2: LoRA" in card.text

    # The final folder, merged or adapter, loads through remote code in a fresh process and gives the trained logits.
    model = trainer.model.eval()
    batch = trainer.data_collator([trainer.train_dataset[0]])
    with torch.no_grad():
        expected = model(**batch).logits
    torch.save(batch, tmp_path / "batch.pt")
    script = ("import sys, torch; from transformers import AutoModel; "
              "m = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval(); "
              "torch.save(m(**torch.load(sys.argv[2])).logits, sys.argv[3])")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", script, str(final), str(tmp_path / "batch.pt"),
                             str(tmp_path / "out.pt")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), expected, atol=1e-4, rtol=1e-4)


def test_a_short_run_logs_and_plots_its_loss_without_being_told(tiny_folder, easy_vqa_data, tmp_path):
    argv = [flag for flag in COMMON if flag not in ("--logging_steps", "1")]
    trainer = train(["--stage", "1", "--model_name_or_path", str(tiny_folder), "--data_path",
                     str(easy_vqa_data / "captions.jsonl"), "--output_dir", str(tmp_path), "--max_steps", "3",
                     "--save_strategy", "no", "--save_final", "false", *argv])
    assert len(losses(trainer)) == 3
    assert (tmp_path / "loss_curve.png").stat().st_size > 1000


def test_training_skips_the_model_s_placeholder_check_that_waits_for_the_gpu(tiny_folder, easy_vqa_data, tmp_path,
                                                                               monkeypatch):
    """The examples' placeholders were checked when they were tokenized; the model's own check reads a count off the
    GPU at every micro-batch (a host stall), so transformers' switch for such checks is on while training, and only
    then."""
    monkeypatch.delenv("TRANSFORMERS_DISABLE_TORCH_CHECK", raising=False)
    seen = []

    class RecordSwitch(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            seen.append(os.environ.get("TRANSFORMERS_DISABLE_TORCH_CHECK"))

    train(["--stage", "1", "--model_name_or_path", str(tiny_folder), "--data_path",
           str(easy_vqa_data / "captions.jsonl"), "--output_dir", str(tmp_path), "--max_steps", "2",
           "--save_strategy", "no", "--save_final", "false", *COMMON], callbacks=[RecordSwitch()])
    assert seen == ["1", "1"] and "TRANSFORMERS_DISABLE_TORCH_CHECK" not in os.environ


def test_data_loader_workers_live_across_epochs_and_change_nothing(tiny_folder, easy_vqa_data, tmp_path):
    """Workers persist across epochs by default (starting them again stalled each epoch's first step on the GPU);
    three epochs with one such worker give the losses of loading in the main process, which cannot persist."""
    runs = {}
    for workers in ("0", "1"):
        argv = [flag if flag != "0" else workers for flag in COMMON]
        runs[workers] = train(["--stage", "1", "--model_name_or_path", str(tiny_folder), "--data_path",
                               str(easy_vqa_data / "captions.jsonl"), "--output_dir", str(tmp_path / workers),
                               "--num_train_epochs", "3", "--learning_rate", "1e-2", "--save_strategy", "no",
                               "--save_final", "false", *argv])
    assert runs["1"].args.dataloader_persistent_workers and not runs["0"].args.dataloader_persistent_workers
    assert len(losses(runs["1"])) == 12  # 8 captions, 2 a step
    assert losses(runs["1"]) == pytest.approx(losses(runs["0"]), abs=1e-6)


def test_nothing_stops_the_host_by_default_and_the_losses_are_the_same(tiny_folder, easy_vqa_data, tmp_path):
    """By default batches are copied without waiting (accelerate's non_blocking, from pinned memory), no NaN/Inf check
    reads each micro-batch's loss, and DDP does not broadcast buffers at every forward; each can be asked back, and
    the losses are those of the Trainer's defaults."""
    runs = {}
    for name, flags in (("default", []), ("waiting", ["--accelerator_config", '{"non_blocking": false}',
                                                       "--logging_nan_inf_filter", "true",
                                                       "--ddp_broadcast_buffers", "true"])):
        runs[name] = train(["--stage", "1", "--model_name_or_path", str(tiny_folder), "--data_path",
                            str(easy_vqa_data / "captions.jsonl"), "--output_dir", str(tmp_path / name),
                            "--max_steps", "3", "--learning_rate", "1e-2", "--save_strategy", "no",
                            "--save_final", "false", *COMMON, *flags])
    default, waiting = runs["default"], runs["waiting"]
    assert default.accelerator.dataloader_config.non_blocking and default.args.dataloader_pin_memory
    assert not default.args.logging_nan_inf_filter and default.args.ddp_broadcast_buffers is False
    assert not waiting.accelerator.dataloader_config.non_blocking and waiting.args.logging_nan_inf_filter
    assert waiting.args.ddp_broadcast_buffers
    assert losses(default) == pytest.approx(losses(waiting), abs=1e-6)


def test_a_trial_on_the_first_records_only(stage1_folder, easy_vqa_data, tmp_path):
    trainer = train(["--stage", "2", "--model_name_or_path", str(stage1_folder), "--data_path",
                     str(easy_vqa_data / "conversations.json"), "--max_train_samples", "2", "--output_dir",
                     str(tmp_path), "--max_steps", "1", "--lora_r", "4", "--save_strategy", "no", "--save_final",
                     "false", *COMMON])
    assert [example["id"] for example in trainer.train_dataset] == [
        str(record["id"]) for record in json.load(open(easy_vqa_data / "conversations.json"))[:2]]


def test_packed_and_padded_training_follow_the_same_loss_curve(stage1_folder, easy_vqa_data, tmp_path):
    """Packing (the default) changes how a micro-batch is laid out, not what is learned: same losses step by step
    (LoRA dropout off, since its random masks follow the tensors' shapes)."""
    def run(name, *extra):
        return train(["--stage", "2", "--model_name_or_path", str(stage1_folder), "--data_path",
                      str(easy_vqa_data / "conversations.json"), "--output_dir", str(tmp_path / name),
                      "--max_steps", "4", "--lora_r", "4", "--lora_dropout", "0", "--learning_rate", "1e-2",
                      "--save_strategy", "no", "--save_final", "false", *COMMON, *extra])

    packed = run("packed")
    assert packed.data_collator.pack and "cu_seq_lens_q" in packed.data_collator(packed.train_dataset[:2])
    padded = run("padded", "--packing", "false")
    torch.testing.assert_close(torch.tensor(losses(packed)), torch.tensor(losses(padded)), rtol=1e-5, atol=1e-6)


def test_full_finetune_overfits_a_tiny_set(stage1_folder, easy_vqa_data, tmp_path):
    trainer = train(["--stage", "2", "--full_finetune", "--model_name_or_path", str(stage1_folder), "--data_path",
                     str(easy_vqa_data / "conversations.json"), "--output_dir", str(tmp_path), "--max_steps", "40",
                     "--learning_rate", "1e-2", "--save_strategy", "no", *COMMON])
    curve = losses(trainer)
    assert curve[-1] < 0.5 * curve[0], curve
    diff = changed(weights(stage1_folder), weights(tmp_path / "final"))
    assert any(key.startswith("language_model.") for key in diff)
    assert not any(key.startswith("vision_tower.") for key in diff)


def test_cached_and_live_image_features_give_the_same_losses(tiny_folder, easy_vqa_data, tmp_path):
    live = losses(run_stage1(tiny_folder, easy_vqa_data, tmp_path / "live", "--save_strategy", "no"))
    cache_args = ["--cache_image_embeds", "--embedding_cache_dir", str(tmp_path / "cache"),
                  "--embedding_cache_dtype", "float32", "--save_strategy", "no"]
    cached = losses(run_stage1(tiny_folder, easy_vqa_data, tmp_path / "cached", *cache_args))
    assert len(list((tmp_path / "cache").glob("*/*.arrow"))) == 1
    again = losses(run_stage1(tiny_folder, easy_vqa_data, tmp_path / "again", *cache_args))
    assert len(list((tmp_path / "cache").glob("*/*.arrow"))) == 1  # reused, not recomputed
    torch.testing.assert_close(torch.tensor(cached), torch.tensor(live), rtol=1e-5, atol=1e-5)
    assert cached == again


def test_the_image_cache_is_shared_per_image_across_stages(tiny_folder, easy_vqa_data, tmp_path):
    """Stage 2 after stage 1 encodes only the images stage 1 did not; a changed file is encoded again."""
    from embedding_cache import EmbeddingCache
    from modeling_nextgpt import NextGPTForConditionalGeneration
    from processing_nextgpt import NextGPTProcessor

    model = NextGPTForConditionalGeneration.from_pretrained(tiny_folder).eval()
    processor = NextGPTProcessor.from_pretrained(tiny_folder)
    images = [json.loads(line)["image"] for line in open(easy_vqa_data / "captions.jsonl")][:6]
    for image in images[4:]:  # copies, so that the test may touch them
        shutil.copy(image, tmp_path)
    images[4:] = [str(tmp_path / os.path.basename(image)) for image in images[4:]]

    def build(paths: list[str]) -> EmbeddingCache:
        return EmbeddingCache.build(model, processor, {"image": paths}, str(tmp_path / "cache"), dtype="float32")

    stage1 = build(images[:4])
    stage2 = build(images[2:])  # two seen by stage 1, two new
    tables = sorted((tmp_path / "cache").glob("*/*.arrow"))
    assert sorted(len(table) for table in stage2.tables["image"]) == [2, 4] and len(tables) == 2
    with torch.no_grad():
        expected = model.encode_images(processor.preprocess_images(images))
    torch.testing.assert_close(stage2.lookup(images[2:]), expected[2:])
    torch.testing.assert_close(stage1.lookup(images[:4]), expected[:4])
    os.utime(images[5], ns=(1, 1))  # the file changed: its features are encoded again, the rest reused
    again = build(images[2:])
    assert sorted(len(table) for table in again.tables["image"]) == [1, 2, 4]
    torch.testing.assert_close(again.lookup(images[2:]), expected[2:])
    order = [5, 2, 5, 3, 4, 2]  # across the three tables, repeated, out of order: one read per table, rows in order
    torch.testing.assert_close(again.lookup([images[index] for index in order]), expected[order])


def test_a_model_from_parts_and_its_saved_folder_share_the_image_cache(tmp_path, tokenizer):
    """Stage 1 assembles from parts, stage 2 loads stage 1's folder: saving adds bookkeeping (the config's dtype, the
    processor's auto_map) that must not change the cache's fingerprint, or stage 2 encodes every image again."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from assemble_nextgpt import assemble_from_models
    from conftest import TINY_IMAGEBIND, tiny_text_config
    from configuration_nextgpt import ImageBindVisionConfig
    from embedding_cache import tower_fingerprint
    from imagebind_vision import ImageBindVisionModel
    from modeling_nextgpt import NextGPTForConditionalGeneration

    torch.manual_seed(0)
    model, processor = assemble_from_models(
        AutoModelForCausalLM.from_config(LlamaConfig(**tiny_text_config())), tokenizer,
        ImageBindVisionModel(ImageBindVisionConfig(**TINY_IMAGEBIND)), imagebind_image_processor(),
        image_mode="patches")
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded = NextGPTForConditionalGeneration.from_pretrained(tmp_path, dtype=torch.float32)
    assert tower_fingerprint(reloaded, NextGPTProcessor.from_pretrained(tmp_path), "float32") == tower_fingerprint(
        model, processor, "float32")


class StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_resumed_run_matches_an_uninterrupted_one(stage1_folder, easy_vqa_data, tmp_path):
    def run(output_dir, *extra, callbacks=None):
        return train(["--stage", "2", "--model_name_or_path", str(stage1_folder), "--data_path",
                      str(easy_vqa_data / "conversations.json"), "--output_dir", str(output_dir), "--max_steps", "6",
                      "--save_steps", "3", "--lora_r", "4", "--learning_rate", "1e-2", *COMMON, *extra],
                     callbacks=callbacks)

    straight = losses(run(tmp_path / "straight"))
    run(tmp_path / "interrupted", callbacks=[StopAt(3)])
    resumed = run(tmp_path / "interrupted", "--resume_from_checkpoint", str(tmp_path / "interrupted" / "checkpoint-3"))
    after_resume = [entry["loss"] for entry in resumed.state.log_history if "loss" in entry and entry["step"] > 3]
    assert len(after_resume) == 3
    torch.testing.assert_close(torch.tensor(after_resume), torch.tensor(straight[3:]), rtol=1e-5, atol=1e-6)


def test_stage1_checkpoints_hold_only_the_projector_and_resume_exactly(tiny_folder, easy_vqa_data, tmp_path):
    def run(output_dir, *extra, callbacks=None):
        return train(["--stage", "1", "--model_name_or_path", str(tiny_folder), "--data_path",
                      str(easy_vqa_data / "captions.jsonl"), "--output_dir", str(output_dir), "--max_steps", "4",
                      "--save_steps", "2", "--learning_rate", "1e-2", *COMMON, *extra], callbacks=callbacks)

    straight = losses(run(tmp_path / "straight"))
    checkpoint = tmp_path / "straight" / "checkpoint-2"
    assert set(weights(checkpoint)) == {"projector.linear_1.weight", "projector.linear_1.bias"}
    assert set(weights(tmp_path / "straight" / "final")) == set(weights(tiny_folder))  # the final folder is whole
    run(tmp_path / "interrupted", callbacks=[StopAt(2)])
    resumed = run(tmp_path / "interrupted", "--resume_from_checkpoint", "true")
    after_resume = [entry["loss"] for entry in resumed.state.log_history if "loss" in entry and entry["step"] > 2]
    torch.testing.assert_close(torch.tensor(after_resume), torch.tensor(straight[2:]), rtol=1e-5, atol=1e-6)
    assert changed(weights(tmp_path / "straight" / "final"), weights(tmp_path / "interrupted" / "final")) == set()


# Where the SIGKILL strikes: inside the write of checkpoint-4 (weights and optimizer written, not the rest), or in
# the middle of training step 4 (checkpoint-2 written, nothing of checkpoint-4 yet).
KILL_POINTS = {
    "while writing checkpoint-4": ("_save_rng_state", "output_dir"),
    "during training step 4": ("training_step", "*args, **kwargs"),
}


@pytest.mark.parametrize("moment", list(KILL_POINTS))
def test_a_killed_run_resumes_from_the_last_complete_checkpoint_to_the_same_losses(stage1_folder, easy_vqa_data,
                                                                                   tmp_path, moment):
    """kill -9 at several moments: an incomplete checkpoint folder is never taken for a checkpoint, and
    `--resume_from_checkpoint true` resumes from checkpoint-2 and ends where an uninterrupted run ends."""
    argv = ["--stage", "2", "--model_name_or_path", str(stage1_folder), "--data_path",
            str(easy_vqa_data / "conversations.json"), "--max_steps", "6", "--save_steps", "2", "--lora_r", "4",
            "--learning_rate", "1e-2", *COMMON]
    straight = losses(train(argv + ["--output_dir", str(tmp_path / "straight"), "--save_strategy", "no"]))
    killed = tmp_path / "killed"
    method, arguments = KILL_POINTS[moment]
    script = ("import os, signal, sys; from transformers import Trainer; from train_hf import train\n"
              f"original = Trainer.{method}\n"
              f"def dying(self, {arguments}):\n"
              "    if self.state.global_step == (4 if 'checkpoint' in sys.argv[1] else 3):\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              f"    return original(self, {arguments})\n"
              f"Trainer.{method} = dying\n"
              "train(sys.argv[2:])\n")
    result = subprocess.run([sys.executable, "-c", script, moment, *argv, "--output_dir", str(killed)],
                            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == -9, result.stderr[-3000:]
    assert (killed / "checkpoint-2" / "checkpoint_complete").is_file()
    if "checkpoint" in moment:
        assert (killed / "checkpoint-4" / "optimizer.pt").is_file()  # it looks like a checkpoint, but is not whole
        with pytest.raises(ValueError, match="checkpoint-4: incomplete checkpoint"):
            train(argv + ["--output_dir", str(killed), "--resume_from_checkpoint", str(killed / "checkpoint-4")])
    else:
        assert not (killed / "checkpoint-4").exists()
    resumed = train(argv + ["--output_dir", str(killed), "--resume_from_checkpoint", "true"])
    after_resume = [entry["loss"] for entry in resumed.state.log_history if "loss" in entry and entry["step"] > 2]
    torch.testing.assert_close(torch.tensor(after_resume), torch.tensor(straight[2:]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no complete checkpoint in"):
        train(argv + ["--output_dir", str(tmp_path / "empty"), "--resume_from_checkpoint", "true"])


def write_bad_records(folder, good: dict) -> dict[str, tuple[dict, str]]:
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(b"not a png")
    image = good["image"]
    return {
        "missing image": ({**good, "image": str(folder / "nope.png")}, "image not found: .*nope.png"),
        "corrupt image": ({**good, "image": str(corrupt)}, "corrupt.png does not decode"),
        "two placeholders, one image": (
            {**good, "conversations": [{"from": "human", "value": "<image><image> hi"}, {"from": "gpt", "value": "x"}]},
            "2 <image> placeholders but 1 images"),
        "roles": ({**good, "conversations": [{"from": "human", "value": "<image> a"}, {"from": "human", "value": "b"}]},
                  "roles must alternate"),
        "empty turn": ({**good, "conversations": [{"from": "human", "value": "<image> a"},
                                                  {"from": "gpt", "value": " "}]},
                       "turn 1 is empty"),
        "unknown format": ({"id": "q", "image": image, "text": "?"}, "needs 'conversations'"),
        "too long": ({**good, "conversations": [{"from": "human", "value": "<image> " + "word " * 400},
                                                {"from": "gpt", "value": "x"}]}, "past max_length=256"),
    }


def test_every_bad_record_kind_stops_the_run_with_file_index_id_and_reason(stage1_folder, easy_vqa_data, tmp_path):
    good = json.load(open(easy_vqa_data / "conversations.json"))[0]
    cases = write_bad_records(tmp_path, good)
    records = [good] + [{**record, "id": f"bad-{number}"} for number, (record, _) in enumerate(cases.values())]
    data = tmp_path / "mixed.json"
    json.dump(records, open(data, "w"))
    argv = ["--stage", "2", "--model_name_or_path", str(stage1_folder), "--data_path", str(data), "--output_dir",
            str(tmp_path / "out"), "--max_steps", "1", "--lora_r", "4", "--model_max_length", "256", *COMMON]
    with pytest.raises(BadRecordsError) as raised:
        train(argv)
    bad = raised.value.bad_records
    assert [record.index for record in bad] == list(range(1, len(cases) + 1))
    for record, (name, (_, reason)) in zip(bad, cases.items()):
        assert record.source == str(data) and record.record_id == f"bad-{record.index - 1}"
        assert __import__("re").search(reason, record.reason), (name, record.reason)
        assert f"mixed.json record {record.index} (id bad-{record.index - 1})" in str(raised.value)

    trainer = train(argv + ["--skip_bad_records"])
    assert len(trainer.train_dataset) == 1 and trainer.state.global_step == 1


def test_malformed_json_lines_name_the_line(stage1_folder, tmp_path):
    data = tmp_path / "broken.jsonl"
    data.write_text('{"id": 1, "image": "a.png", "caption": "x"}\n{"id": 2, oops}\n')
    with pytest.raises(ValueError, match=r"broken.jsonl line 2: not valid JSON"):
        train(["--model_name_or_path", str(stage1_folder), "--data_path", str(data), "--output_dir", str(tmp_path)])


@pytest.mark.parametrize("name", ["missing.json", "missing.jsonl", "./missing_folder"])
def test_a_missing_data_file_is_named(stage1_folder, tmp_path, name):
    path = name if name.startswith(".") else str(tmp_path / name)
    with pytest.raises(ValueError, match=f"{path}: no such file or folder"):
        train(["--model_name_or_path", str(stage1_folder), "--data_path", path, "--output_dir", str(tmp_path)])


@pytest.mark.parametrize("flag", ["--model_name_or_path", "--llm"])
def test_a_missing_model_folder_is_named(tmp_path, flag):
    others = ["--vision_tower", "efficientnet-lite0"] if flag == "--llm" else []
    with pytest.raises(ValueError, match=f"{flag} ./no/such/model: no such folder"):
        train([flag, "./no/such/model", *others, "--data_path", "x.json", "--output_dir", str(tmp_path)])


def test_stage2_refuses_a_folder_without_projector_weights(stage1_folder, easy_vqa_data, tmp_path):
    folder = tmp_path / "no_projector"
    os.makedirs(folder)
    for name in os.listdir(stage1_folder):
        if name != "model.safetensors":
            os.symlink(stage1_folder / name, folder / name)
    save_file({k: v for k, v in weights(stage1_folder).items() if not k.startswith("projector.")},
              folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="holds no projector weights"):
        train(["--stage", "2", "--model_name_or_path", str(folder), "--data_path",
               str(easy_vqa_data / "conversations.json"), "--output_dir", str(tmp_path / "out")])
    with pytest.raises(ValueError, match="Stage 2 starts from a stage-1 output"):
        train(["--stage", "2", "--llm", "x", "--vision_tower", "y", "--data_path", "z", "--output_dir", str(tmp_path)])


def test_several_gpus_in_one_process_are_refused_with_the_launch_to_use():
    """Several visible GPUs and no launcher: the Trainer would fall back to DataParallel, whose replicas fail inside the
    vision tower (seen on a 4-GPU machine); the error names torchrun with the count, and one GPU or none passes."""
    from types import SimpleNamespace

    from train_hf import check_launch

    with pytest.raises(ValueError, match=r"4 GPUs are visible.*torchrun --nproc_per_node 4.*CUDA_VISIBLE_DEVICES=0"):
        check_launch(SimpleNamespace(n_gpu=4))
    for count in (0, 1):
        check_launch(SimpleNamespace(n_gpu=count))


def test_stage1_refuses_a_quantized_llm_by_name(stage1_folder, tmp_path):
    with pytest.raises(ValueError, match="Stage 1 trains the projector only"):
        train(["--stage", "1", "--load_in_4bit", "--model_name_or_path", str(stage1_folder), "--data_path", "x",
               "--output_dir", str(tmp_path)])


def test_fused_kernels_asked_for_without_liger_is_an_error(stage1_folder, easy_vqa_data, tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "liger_kernel" else find_spec(name, *rest))
    with pytest.raises(ValueError, match="--fused_kernels true needs liger-kernel"):
        run_stage1(stage1_folder, easy_vqa_data, tmp_path, "--fused_kernels", "true")
    assert losses(run_stage1(stage1_folder, easy_vqa_data, tmp_path, "--save_final", "false"))  # auto: off on CPU


def test_fused_kernels_stay_off_under_fsdp(monkeypatch):
    """Liger's fused cross-entropy fails on FSDP2's sharded output weights: auto leaves the kernels off under --fsdp
    even where Liger and CUDA are there, and asking for them is refused with the reason."""
    def fused(*argv):
        args, training_args = HfArgumentParser((NextGPTArguments, TrainingArguments)).parse_args_into_dataclasses(
            ["--output_dir", "unused", "--use_cpu", "--fsdp", "full_shard auto_wrap", *argv])
        return apply_fused_kernels(None, args, training_args)

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: object())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert fused() is False
    for flags in (["--fused_kernels", "true"], ["--use_liger_kernel"]):
        with pytest.raises(ValueError, match="does not work under --fsdp"):
            fused(*flags)


def test_deferred_logging_logs_what_the_trainer_logs(tiny_folder, easy_vqa_data, tmp_path):
    """Logging steps that read their values a logging step later (the default) give the Trainer's own log history,
    entry for entry and under the same steps, the same final loss and floating-point operations, and checkpoints
    whose saved history holds every step logged up to them; every entry has its time since training began."""
    timing = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "elapsed_s")

    def untimed(history: list[dict]) -> list[dict]:
        return [{key: value for key, value in entry.items() if key not in timing} for entry in history]

    def run(deferred: str):
        output = tmp_path / deferred
        trainer = run_stage1(tiny_folder, easy_vqa_data, output, "--max_steps", "7", "--logging_steps", "2",
                             "--save_strategy", "steps", "--save_steps", "3", "--save_final", "false",
                             "--deferred_logging", deferred)
        saved = json.loads((output / "checkpoint-3" / "trainer_state.json").read_text())["log_history"]
        elapsed = [entry["elapsed_s"] for entry in trainer.state.log_history]
        assert elapsed == sorted(elapsed) and elapsed[0] > 0
        return untimed(trainer.state.log_history), untimed(saved), trainer.state.total_flos

    deferred, synced = run("true"), run("false")
    history, saved, flos = deferred
    assert [entry["step"] for entry in history] == [2, 4, 6, 7] and "grad_norm" in history[0]
    assert history[-1]["train_loss"] > 0 and flos > 0
    assert [entry["step"] for entry in saved] == [2]
    assert deferred == synced


def test_logging_before_training_has_no_elapsed_time(tmp_path):
    """A log before training (an evaluation first) is the Trainer's entry: no time since training began yet."""
    from training_logs import LoggingTrainer

    trainer = LoggingTrainer(model=torch.nn.Linear(2, 2), args=TrainingArguments(str(tmp_path), use_cpu=True,
                                                                                  report_to="none"))
    trainer.log({"eval_loss": 1.5})
    assert trainer.state.log_history == [{"eval_loss": 1.5, "epoch": 0, "step": 0}]


def test_liger_kernels_stay_on_the_model_they_were_applied_to():
    """Liger swaps the classes and the rotary function of transformers' Llama module: a Llama built afterwards in the
    same process keeps transformers' own modules and runs on the CPU, where Liger's Triton kernels cannot."""
    pytest.importorskip("liger_kernel")
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.models.llama import modeling_llama

    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    classes = modeling_llama.LlamaRMSNorm, modeling_llama.LlamaMLP
    input_ids = torch.arange(12)[None] % 64
    torch.manual_seed(0)
    expected = LlamaForCausalLM(config)(input_ids).logits

    fused = LlamaForCausalLM(config)
    apply_liger_kernels(fused)
    assert fused.model.norm._get_name() == "LigerRMSNorm" and fused.forward.__func__ is not LlamaForCausalLM.forward
    assert (modeling_llama.LlamaRMSNorm, modeling_llama.LlamaMLP) == classes
    torch.manual_seed(0)
    later = LlamaForCausalLM(config)
    assert type(later.model.norm) is classes[0] and later.model.norm._get_name() == "LlamaRMSNorm"
    assert torch.equal(later(input_ids).logits, expected)


def test_frozen_weights_follow_the_training_precision_unless_given():
    def dtype(*argv):
        args, training_args = HfArgumentParser((NextGPTArguments, TrainingArguments)).parse_args_into_dataclasses(
            ["--output_dir", "unused", "--use_cpu", *argv])
        return frozen_weights_dtype(args, training_args)

    assert dtype() == torch.float32 and dtype("--bf16") == torch.bfloat16
    assert dtype("--bf16", "--model_dtype", "float32") == torch.float32


def test_cpu_threads_share_the_cores_among_the_machine_s_training_processes(monkeypatch, stage1_folder, tmp_path):
    """torchrun sets OMP_NUM_THREADS=1 for several processes a machine; each takes its share of the cores instead."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert cpu_threads(0) == 16 and cpu_threads(3) == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "128")
    assert cpu_threads(0) == 1
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert cpu_threads(0) == 64
    with pytest.raises(ValueError, match="--cpu_threads must be 0"):
        train(["--stage", "1", "--cpu_threads", "-1", "--model_name_or_path", str(stage1_folder), "--data_path", "x",
               "--output_dir", str(tmp_path)])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU error")
def test_quantized_loading_needs_cuda(stage1_folder, tmp_path):
    with pytest.raises(ValueError, match="need a CUDA GPU"):
        train(["--stage", "2", "--load_in_4bit", "--model_name_or_path", str(stage1_folder), "--data_path", "x",
               "--output_dir", str(tmp_path)])


def test_do_eval_reports_vqa_accuracy_and_eval_command_works(stage1_folder, easy_vqa_data, tmp_path, capsys):
    train(["--stage", "1", "--model_name_or_path", str(stage1_folder), "--data_path",
           str(easy_vqa_data / "captions.jsonl"), "--eval_data_path", str(easy_vqa_data / "test.json"), "--do_eval",
           "--output_dir", str(tmp_path), "--max_steps", "1", *COMMON])
    metrics = json.load(open(tmp_path / "eval_results.json"))
    assert {"eval_loss", "eval_vqa_accuracy", "eval_vqa_count/yes/no"} <= metrics.keys()
    from model_card import read_card_data

    record = read_card_data(str(tmp_path / "final"))["training"][-1]
    assert record["eval"]["eval_vqa_accuracy"] == metrics["eval_vqa_accuracy"]

    from eval_vqa import main as eval_main

    output = tmp_path / "answers.jsonl"
    assert eval_main(["--model", str(tmp_path / "final"), "--data", str(easy_vqa_data / "test.json"),
                      "--output", str(output), "--batch_size", "4", "--max_new_tokens", "3"]) == 0
    assert len(output.read_text().splitlines()) == 6
    capsys.readouterr()
    scores = json.load(open(tmp_path / "answers_scores.json"))
    assert sum(v for k, v in scores.items() if k.startswith("count/")) == 6
    # Bad inputs: one line that names them, exit code 2
    for argv, message in ((["--model", "./no/such/model", "--data", str(easy_vqa_data / "test.json")],
                           "error: --model ./no/such/model: no such folder"),
                          (["--model", str(tmp_path / "final"), "--data", str(tmp_path / "none.json")],
                           f"error: {tmp_path / 'none.json'}: no such file or folder")):
        assert eval_main(argv) == 2 and capsys.readouterr().err.strip() == message


@pytest.mark.parametrize("gradient_dtype,hooks", [("float32", []), ("float16", ["fp16_compress_hook"])])
def test_two_process_stage1_keeps_ranks_identical(tiny_folder, easy_vqa_data, tmp_path, gradient_dtype, hooks):
    """Two CPU processes (gloo) through torchrun: both ranks end with the same projector, whose gradients were
    all-reduced in the dtype asked for (DDP's compression hook registered for float16, none for float32; the bfloat16
    hook needs NCCL)."""
    launcher = tmp_path / "run_rank.py"
    launcher.write_text(
        "import os, sys, torch\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from train_hf import train\n"
        "trainer = train(sys.argv[2:])\n"
        "state = {k: v.detach().cpu() for k, v in trainer.model.projector.state_dict().items()}\n"
        "hooks = [hook.__name__ for hook, _ in trainer.model_wrapped._comm_hooks]\n"
        "torch.save({'state': state, 'hooks': hooks}, os.path.join(sys.argv[1], f\"rank{os.environ['RANK']}.pt\"))\n"
        "torch.distributed.barrier()\n"
        "torch.distributed.destroy_process_group()\n"
    )
    argv = ["--stage", "1", "--model_name_or_path", str(tiny_folder),
            "--data_path", str(easy_vqa_data / "captions.jsonl"),
            "--output_dir", str(tmp_path / "out"), "--max_steps", "3", "--learning_rate", "1e-2", "--use_cpu",
            "--ddp_backend", "gloo", "--save_strategy", "no", "--ddp_gradient_dtype", gradient_dtype, *COMMON]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
         str(launcher), str(tmp_path), *argv], env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1))
    assert rank0["hooks"] == rank1["hooks"] == hooks
    rank0, rank1 = rank0["state"], rank1["state"]
    initial = {k.removeprefix("projector."): v for k, v in weights(tiny_folder).items() if k.startswith("projector.")}
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key])
        assert not torch.equal(rank0[key], initial[key])
    assert (tmp_path / "out" / "final" / "model.safetensors").is_file()


LOAD_FROM_HUB = """
import sys, torch
from transformers import AutoModel, AutoProcessor, pipeline
repo, batch_path, out_path = sys.argv[1:]
model = AutoModel.from_pretrained(repo, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(repo, trust_remote_code=True)
torch.save(model(**torch.load(batch_path)).logits, out_path)
vqa = pipeline("visual-question-answering", model=repo, trust_remote_code=True)
print(vqa(image=sys.argv[2].replace("batch.pt", "image.png"), question="What shape?", max_new_tokens=2))
"""


def test_push_to_hub_round_trips_stage1_and_stage2_outputs(stage1_folder, easy_vqa_data, tmp_path, monkeypatch):
    """Pushed through transformers' own Hub client (a stand-in that commits into a local hub cache), then read back
    by repository id in a fresh process, offline, with an empty remote-code cache: the logits of the folder pushed."""
    from huggingface_hub import ModelCard
    from transformers import AutoModel, AutoProcessor

    from conftest import random_image
    from hub_stand_in import install

    hub = install(monkeypatch, str(tmp_path / "hub"))
    # Stage 1, the transformers way: model and processor each pushed by their own push_to_hub.
    AutoModel.from_pretrained(stage1_folder, trust_remote_code=True).push_to_hub("someone/stage1")
    AutoProcessor.from_pretrained(stage1_folder, trust_remote_code=True).push_to_hub("someone/stage1")
    # Stage 2, merged and adapter beside its base: train_hf.py --push_to_hub uploads its final folder, card included.
    sources = {"someone/stage1": stage1_folder}
    for kind, extra in (("merged", ["--merge_lora"]), ("adapter", [])):
        output = tmp_path / kind
        train(["--train_instruct", "--model_name_or_path", str(stage1_folder), "--data_path",
               str(easy_vqa_data / "conversations.json"), "--output_dir", str(output), "--max_steps", "1",
               "--lora_r", "4", "--learning_rate", "1e-2", "--push_to_hub", "--hub_model_id",
               f"someone/stage2-{kind}", *COMMON, *extra])
        sources[f"someone/stage2-{kind}"] = output / "final"
    assert [repo for repo, _, _ in hub.commits] == ["someone/stage1", "someone/stage1", "someone/stage2-merged",
                                                     "someone/stage2-adapter"]
    assert "adapter_model.safetensors" in hub.commits[-1][2] and "README.md" in hub.commits[-1][2]

    processor = AutoProcessor.from_pretrained(stage1_folder)
    random_image(5).save(tmp_path / "image.png")
    batch = processor(images=[str(tmp_path / "image.png")], text=processor.render(
        [{"role": "user", "content": "<image>\nWhat shape?"}], add_generation_prompt=True), return_tensors="pt")
    torch.save(dict(batch), tmp_path / "batch.pt")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    for index, (repo, source) in enumerate(sources.items()):
        with torch.no_grad():
            expected = AutoModel.from_pretrained(source, trust_remote_code=True).eval()(**batch).logits
        result = subprocess.run(
            [sys.executable, "-c", LOAD_FROM_HUB, repo, str(tmp_path / "batch.pt"), str(tmp_path / "out.pt")],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
            env={**env, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"),
                 "HF_MODULES_CACHE": str(tmp_path / f"modules{index}")})
        assert result.returncode == 0, f"{repo}: {result.stderr[-3000:]}"
        torch.testing.assert_close(torch.load(tmp_path / "out.pt"), expected, atol=1e-5, rtol=1e-5)
        assert "answer" in result.stdout
    snapshot = next((tmp_path / "hub" / "models--someone--stage2-adapter" / "snapshots").iterdir())
    card = ModelCard.load(snapshot / "README.md")
    assert [record["stage"] for record in card.data.to_dict()["nextgpt"]["training"]] == [1, 2]


def test_the_llm_s_generation_config_survives_both_stages(tiny_folder, easy_vqa_data, tmp_path):
    """An LLM whose chat turns end with a token other than EOS (several end ids) and that ships sampling defaults
    keeps them through stage 1 and stage 2, merged or not."""
    from transformers import GenerationConfig

    start = tmp_path / "start"
    shutil.copytree(tiny_folder, start)
    GenerationConfig(eos_token_id=[2, 7], temperature=0.6, top_p=0.9, do_sample=True).save_pretrained(start)
    run_stage1(start, easy_vqa_data, tmp_path / "stage1", "--max_steps", "1")
    finals = []
    for kind, extra in (("merged", ["--merge_lora"]), ("adapter", [])):
        train(["--train_instruct", "--model_name_or_path", str(tmp_path / "stage1" / "final"), "--data_path",
               str(easy_vqa_data / "conversations.json"), "--output_dir", str(tmp_path / kind), "--max_steps", "1",
               "--lora_r", "4", *COMMON, *extra])
        finals.append(tmp_path / kind / "final")
    for folder in (tmp_path / "stage1" / "final", *finals):
        config = GenerationConfig.from_pretrained(folder)
        assert (config.eos_token_id, config.temperature, config.top_p, config.do_sample) == ([2, 7], 0.6, 0.9, True)
