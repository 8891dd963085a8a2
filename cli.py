"""What the command-line tools share: a parser whose long options answer to both spellings (`--max_new_tokens` and
`--max-new-tokens`), as train_hf.py's HfArgumentParser does, so a flag learnt from one tool works in the others; the
dtype names their flags take; and the check that a local folder they were given exists."""

import argparse
import os
from collections.abc import Callable

import torch

# The precisions the tools' --dtype / --model_dtype flags name (with "auto" where a tool also takes the checkpoint's).
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
LOAD_DTYPES = {"auto": "auto", **DTYPES}  # for loading: "auto" is the checkpoint's own


def at_least(minimum: float, kind: type = int, *, inclusive: bool = True) -> Callable[[str], float]:
    """An argparse type: a `kind` (int or float) of `minimum` or more (above it, with inclusive=False), so that a
    count of 0 or a negative limit is refused with the flag's name instead of failing later or meaning something
    else (a negative --limit slicing from the end)."""
    bound = f"{minimum:g} or more" if inclusive else f"more than {minimum:g}"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'}, got {text}")
        if not (value >= minimum if inclusive else value > minimum):  # NaN fails both
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return parse


def add_quantize_option(parser: argparse.ArgumentParser) -> None:
    from weight_quantization import INT4_GROUP_SIZE, QUANTIZE_BITS

    parser.add_argument("--quantize", choices=list(QUANTIZE_BITS),
                        help="store the LLM's projection weights in 8 or 4 bits after loading (weight_quantization.py; "
                             f"int4 in groups of {INT4_GROUP_SIZE} with a scale and offset each); the fast path "
                             "decodes them with its own kernels (quantized_decode_kernels.py)")


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` (description from the caller, raw formatting) whose long options take either
    spelling; --help shows the first one given."""

    def __init__(self, description: str | None = None, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(description=description, **kwargs)

    def add_argument(self, *names, **kwargs):
        spellings = [f"--{name[2:].replace(old, new)}" for name in names if name.startswith("--")
                     for old, new in (("-", "_"), ("_", "-"))]
        action = super().add_argument(*names, **kwargs)
        for spelling in spellings:
            if spelling not in self._option_string_actions:
                self._option_string_actions[spelling] = action  # accepted, not listed twice in --help
        return action

    def _get_option_tuples(self, option_string: str) -> list[tuple]:
        """argparse's matches of an abbreviated option, one per action: `--output` matching `--output_dir` and
        `--output-dir`, one option's two spellings, is not ambiguous."""
        return list({id(match[0]): match for match in super()._get_option_tuples(option_string)}.values())


def missing_local_folder(name: str) -> bool:
    """Whether `name` is meant as a local path (not a hub id such as `owner/model`) that does not exist: worth saying
    so, rather than the hub's "Repo id must be in the form ..." error."""
    return not os.path.exists(name) and (name.startswith((".", "/", "~")) or name.count("/") > 1)
