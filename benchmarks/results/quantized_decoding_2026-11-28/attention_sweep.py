"""Decode attention block sizes (slots a step, warps) against SDPA, profile_decode.py's `attention` shapes, one H100.
Prints the configuration with the least total time, for the end-to-end run that follows."""
import json
import os
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
import decode_attention  # noqa: E402
from profile_decode import attention_times  # noqa: E402

totals = {}
with open(os.path.join(os.environ.get("OUT", "/tmp"), "attention_sweep.jsonl"), "w") as out, torch.no_grad():
    for block_slots, warps in ((32, 8), (64, 16), (16, 8), (32, 4), (64, 4)):
        decode_attention.BLOCK_SLOTS, decode_attention.WARPS = block_slots, warps

        def record(**fields):
            fields.update(block_slots=block_slots, warps=warps)
            print(json.dumps(fields), file=out, flush=True)
            totals[(block_slots, warps)] = totals.get((block_slots, warps), 0) + fields["ours_us"]
            print(block_slots, warps, fields["rows"], fields["cache_length"], fields["filled"],
                  round(fields["sdpa_us"], 1), round(fields["ours_us"], 1), flush=True)

        attention_times(record)
print("totals", {f"{key[0]}x{key[1]}": round(value) for key, value in totals.items()})
print("best", *min(totals, key=totals.get))
