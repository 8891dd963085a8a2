"""From a read-only launch to the batch-1 product, one step at a time (2026-11-29, twenty-sixth session).

stream_floor.py found launches that only read each 7B product's bytes 1.6x faster than the shipped one-row launch
(int4 q|k|v 8.4 against 13.4 us on an H200), and dp4a_rows.py's products, with half the instructions, no faster
than the shipped. Here `_dp4a_kernel`'s MODE keeps its layout and grid and adds one thing at a time: the code loads
alone (0), then the input's limbs (1), then the chunks' powers and sums and the groups' scales and offsets (2), then
the dp4a arithmetic (3, the product); beside the read-only launch and the shipped one, microseconds a product over
copies (>= 200 MB) replayed from a CUDA graph, the fastest of LADDER_CONFIGS for each.

    python benchmarks/results/dp4a_rows_2026-11-29/ladder.py --output ladder.jsonl   # one GPU
"""
import argparse
import itertools
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE)), os.path.dirname(os.path.dirname(os.path.dirname(HERE)))]

from bench_records import append_record  # noqa: E402
from dp4a_rows import SHAPES, dp4a_product, make_limbs  # noqa: E402
from profile_decode import replay_seconds  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel, packed_weight  # noqa: E402
from stream_floor import read, stored_bytes  # noqa: E402

LADDER_CONFIGS = [(8, 1024, 8), (8, 512, 8), (4, 1024, 8), (8, 256, 4), (8, 1024, 4), (4, 1024, 4), (4, 512, 4),
                  (8, 256, 2), (8, 512, 4), (16, 1024, 4), (16, 512, 8), (32, 512, 8)]
READ_CONFIGS = [(512, 2, 8), (256, 4, 4), (512, 2, 4), (2048, 2, 4), (1024, 2, 8), (2048, 1, 8), (512, 1, 4),
                (1024, 2, 4), (1024, 1, 8), (256, 2, 4)]
MODES = {0: "codes", 1: "codes + limbs", 2: "codes + limbs + scales", 3: "dp4a product"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="ladder.jsonl")
    args = parser.parse_args()
    for bits, shape in itertools.product((4, 8), SHAPES):
        n, k = SHAPES[shape]
        size = stored_bytes(f"int{bits}", n, k)
        copies = max(6, math.ceil(200e6 / size))
        bf16 = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5 for _ in range(3)]
        packed = [packed_weight(bf16[i % 3] + i / k, bits) for i in range(copies)]
        x = torch.randn(k, device="cuda").bfloat16()
        row = x.view(1, -1)
        record = dict(bits=bits, shape=shape, bytes=size)
        append_record(args.output, dict(record, way="shipped", us=replay_seconds(
            lambda: [launch_quantized_kernel(row, [w]) for w in packed]) / copies * 1e6))
        buffers = [torch.zeros(size // 8, dtype=torch.int64, device="cuda") for _ in range(copies)]
        seconds, config = min((replay_seconds(lambda: [read(b, config) for b in buffers]), config)
                              for config in READ_CONFIGS)
        append_record(args.output, dict(record, way="read only", config=config, us=seconds / copies * 1e6))
        prepared = make_limbs(x, 2, bits)
        for mode, name in MODES.items():
            timings = []
            for config in LADDER_CONFIGS:
                if n % config[0]:
                    continue
                timings.append((replay_seconds(lambda: [dp4a_product(prepared, w, config, 2, x.dtype, mode)
                                                        for w in packed]) / copies, config))
            seconds, config = min(timings)
            append_record(args.output, dict(record, way=name, config=config, us=seconds * 1e6,
                                            all_us={str(c): round(t * 1e6, 2) for t, c in timings}))


if __name__ == "__main__":
    with torch.no_grad():
        main()
