"""Where a batch-1 token's time goes outside the decode step's CUDA graph (2026-11-29, twenty-eighth session).

bench_generate.py's 7B shape (random weights, embedding mode), bf16 and its int8 / int4 quantized copies. For each:
- `generate`: FastGenerator.generate's time a token, (256 new tokens - 1 new token) / 255, median of 3;
- `step`: LlamaFamilyDecoder.step called 255 times (no token choice, no bookkeeping of the generation loop), the same
  slots as generate's decode (from the padded prompt's end on);
- `replay`: the step's CUDA graph replayed 255 times on its own (no input copies, no cache bookkeeping), its slot set
  to the middle of that range.
The differences are the generation loop's eager per-token ops and the step's own eager ops around its graph.

    python benchmarks/results/token_loop_2026-11-29/loop.py --output loop.jsonl
"""

import argparse
import gc
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))

from bench_generate import build_model, make_inputs, timed  # noqa: E402
from fast_generation import FastGenerator  # noqa: E402
from weight_quantization import quantize_named  # noqa: E402

TOKENS = 256


def measure(weights: str) -> dict:
    model = quantize_named(build_model("embedding"), None if weights == "bf16" else weights)
    fast = FastGenerator(model)
    single = make_inputs(model, 1)

    def generate(n):
        return fast.generate(**single, max_new_tokens=n, eos_token_id=[])

    generate(16)
    per_token = (timed(lambda: generate(TOKENS), 3) - timed(lambda: generate(1), 5)) / (TOKENS - 1)
    decoder = fast.decoders[max(key for key in fast.decoders if key[0] == 1)]  # the 256-token bucket
    prompt_end = 96  # the 66-token prompt padded to a multiple of 32

    def steps():
        decoder.next_slot.fill_(prompt_end)
        decoder.filled[:, prompt_end:] = False
        token = torch.ones(1, dtype=torch.long, device="cuda")
        for index in range(TOKENS - 1):
            decoder.step(token, positions[index])

    positions = [torch.full((1,), 66 + index, dtype=torch.long, device="cuda") for index in range(TOKENS)]
    step = timed(steps, 3) / (TOKENS - 1)
    graphed = decoder.graphs[("step", 1, decoder.cache_length)]
    graphed.inputs[2].fill_(prompt_end + TOKENS // 2)

    def replays():
        for _ in range(TOKENS - 1):
            graphed.graph.replay()

    replay = timed(replays, 3) / (TOKENS - 1)
    return {"weights": weights, "generate_ms": per_token * 1e3, "step_ms": step * 1e3, "replay_ms": replay * 1e3,
            "generate_tokens_per_s": 1 / per_token, "replay_tokens_per_s": 1 / replay,
            "cache_length": decoder.cache_length, "device": torch.cuda.get_device_name()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="loop.jsonl")
    parser.add_argument("--weights", default="bf16,int8,int4")
    args = parser.parse_args()
    for weights in args.weights.split(","):
        row = measure(weights)
        gc.collect()
        torch.cuda.empty_cache()
        print(json.dumps(row), flush=True)
        with open(args.output, "a") as handle:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
