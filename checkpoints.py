"""Resuming safely: which checkpoint folders are complete, and which one `--resume_from_checkpoint` means.

The Trainer writes a checkpoint file by file into `checkpoint-N/`; a run killed in the middle leaves a folder that looks
like a checkpoint but lacks its weights or optimizer state. `MarkCompleteCheckpoints` writes a marker into each folder
once every process has finished writing it, and `checkpoint_to_resume` only ever picks marked folders.
"""

import os
import re
import sys

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

COMPLETE_MARKER = "checkpoint_complete"


def checkpoint_folder(output_dir: str, step: int) -> str:
    return os.path.join(output_dir, f"{PREFIX_CHECKPOINT_DIR}-{step}")


def is_complete(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, COMPLETE_MARKER))


class MarkCompleteCheckpoints(TrainerCallback):
    """After each save (the Trainer calls `on_save` once the checkpoint is written), every process waits for the
    others, then the main one writes the marker."""

    def on_save(self, args, state, control, **kwargs):
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()
        folder = checkpoint_folder(args.output_dir, state.global_step)
        if state.is_world_process_zero and os.path.isdir(folder):
            with open(os.path.join(folder, COMPLETE_MARKER), "w") as handle:
                handle.write(f"{state.global_step}\n")


def checkpoint_to_resume(resume: str | None, output_dir: str) -> str | None:
    """`--resume_from_checkpoint`: unset -> None (start afresh); `true` -> the newest complete checkpoint in
    `output_dir` (incomplete ones are named on stderr and skipped); a folder -> that folder, if complete.
    ValueError naming the folder otherwise."""
    if resume is None or str(resume).lower() in ("", "false"):
        return None
    if str(resume).lower() == "true":
        steps = sorted(
            (int(match.group(1)) for name in (os.listdir(output_dir) if os.path.isdir(output_dir) else [])
             if (match := re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)", name))), reverse=True)
        for step in steps:
            folder = checkpoint_folder(output_dir, step)
            if is_complete(folder):
                return folder
            print(f"Skipping {folder}: incomplete (its writing was interrupted)", file=sys.stderr)
        raise ValueError(f"--resume_from_checkpoint true: no complete checkpoint in {output_dir}")
    if not os.path.isdir(resume):
        raise ValueError(f"--resume_from_checkpoint {resume}: no such folder")
    if not is_complete(resume):
        raise ValueError(
            f"--resume_from_checkpoint {resume}: incomplete checkpoint (no {COMPLETE_MARKER} marker: its writing was "
            f"interrupted, or another program wrote it); resume with --resume_from_checkpoint true for the newest "
            f"complete one, or create the marker if you know the folder is whole"
        )
    return resume
