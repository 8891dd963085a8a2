"""serve.py with the fast path's decode steps made free: what the server's host alone sustains (issue 12).

On a GPU at 64 clients the generation thread, not the GPU, sets the pace (benchmarks/RESULTS.md, "Where the
generation thread's time goes"): it waits for the GIL that the request threads take. This runs `serve.py` unchanged
except that each decode step returns a stand-in of its logits at once (no model work; ordinary token ids, so that the
streams decode and send real text), so that a CPU machine measures the host's own ceiling and what changes it:

    python benchmarks/bench_serve.py --model FOLDER --serve_script benchmarks/serve_host_only.py --clients 64 \\
        --server_args "--fast --max-batch-size 64 --stream-interval-ms 0"

Prefills still run the model (once a request). Any model folder the fast path takes will do (a tiny one is enough).
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fast_decoder import LlamaFamilyDecoder  # noqa: E402
from serve import main  # noqa: E402

STAND_IN_IDS = 1000  # the logits' width: the ids drawn stay below it (ordinary words in Llama and SmolLM2)


def free_layers(self: LlamaFamilyDecoder, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor,
                length: int) -> torch.Tensor:
    """In place of a decode step's layers (`LlamaFamilyDecoder.step` keeps its bookkeeping): logits whose argmax
    moves with the positions."""
    ids = torch.arange(STAND_IN_IDS, device=tokens.device)
    return (ids[None, :] == (positions[:, None] * 7 + 300) % STAND_IN_IDS).float()


if __name__ == "__main__":
    LlamaFamilyDecoder._step = free_layers
    sys.exit(main())
