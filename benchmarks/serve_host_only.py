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


def free_step(self: LlamaFamilyDecoder, tokens: torch.Tensor, positions: torch.Tensor,
              length: int | None = None) -> torch.Tensor:
    """The decoder's bookkeeping of a step (each row's next slot), and logits whose argmax moves with the positions,
    in place of the layers."""
    rows = len(tokens)
    self.filled[:rows].scatter_(1, self.next_slot[:rows, None], True)
    self.next_slot[:rows] += self.holds[:rows]
    ids = torch.arange(STAND_IN_IDS, device=tokens.device)
    return (ids[None, :] == (positions[:, None] * 7 + 300) % STAND_IN_IDS).float()


if __name__ == "__main__":
    LlamaFamilyDecoder.step = free_step
    sys.exit(main())
