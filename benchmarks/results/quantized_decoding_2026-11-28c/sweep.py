"""Sweep (2026-11-28, sixteenth session): several-row int4 tiles made two words at a time by inline PTX (PAIR_TILE,
x's columns permuted) against the shipped autotuned launch, at 8, 32 and 96 rows; then one-row int4 and int8 block
sizes beyond ROW_CONFIGS. 7B shapes, 6 weight copies rotated, CUDA-graph replays, TB/s of codes, scales and offsets."""
import itertools
import json
import sys
import time

import torch
import triton

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from profile_decode import replay_seconds, rotated_quantized_weights  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel, reference_product  # noqa: E402

SHAPES = {"q|k|v": [(4096, 4096)] * 3, "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
part = sys.argv[1]


def emit(**fields):
    print(json.dumps(fields), flush=True)


def timed(x, sets, nbytes, config, **launch):
    try:
        seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w, config, **launch) for w in sets])
    except (triton.runtime.errors.OutOfResources, RuntimeError) as error:
        return str(error)[:80]
    return round(nbytes / seconds / 1e12, 3)


with torch.no_grad():
    if part == "stages":  # the prompt bucket's tiles (ROWS_TILES[(4, 128)]) by software-pipeline depth, 96 rows
        from quantized_decode_kernels import ROWS_TILES, TILE_FIELDS
        for shape, parts in SHAPES.items():
            sets, nbytes = rotated_quantized_weights(4, parts)
            x = torch.randn(96, parts[0][1], device="cuda", dtype=torch.bfloat16)
            emit(shape=shape, rows=96, config="shipped", TBps=timed(x, sets, nbytes, None))
            for tile, stages in itertools.product(ROWS_TILES[(4, 128)], (2, 3, 4)):
                config = {**dict(zip(TILE_FIELDS, tile)), "BIT_CAST": False, "num_warps": 4, "num_stages": stages}
                emit(shape=shape, rows=96, config=config, TBps=timed(x, sets, nbytes, config))
    elif part == "rows":
        stored = {shape: rotated_quantized_weights(4, parts) for shape, parts in SHAPES.items()}
        for rows, (shape, parts) in itertools.product((96, 32, 8), SHAPES.items()):
                sets, nbytes = stored[shape]
                x = torch.randn(rows, parts[0][1], device="cuda", dtype=torch.bfloat16)
                reference = reference_product(x, sets[0]).float()
                emit(shape=shape, rows=rows, config="shipped", TBps=timed(x, sets, nbytes, None))
                if rows == 96:
                    grid = [dict(WEIGHTS_FIRST=wf, BLOCK_N=bn, BLOCK_M=bm, BLOCK_K=bk, num_warps=w)
                            for wf, (bn, bm), bk, w in itertools.product(
                                (True, False), ((128, 128), (64, 128), (128, 64), (64, 64)), (128, 256), (4, 8))]
                else:
                    grid = [dict(WEIGHTS_FIRST=True, BLOCK_N=bn, BLOCK_M=rows if rows > 8 else 16, BLOCK_K=bk,
                                 num_warps=w) for bn, bk, w in itertools.product((64, 128), (128, 256), (4, 8))]
                checked = False
                for config in grid:
                    config = {**config, "WHOLE_TILE": True, "PAIR_TILE": True, "BIT_CAST": False}
                    start = time.time()
                    result = timed(x, sets, nbytes, config)
                    error = None
                    if not checked and not isinstance(result, str):
                        ours = launch_quantized_kernel(x, sets[0], config).float()
                        error = round(float((ours - reference).norm() / reference.norm()), 5)
                        checked = True
                    emit(shape=shape, rows=rows, config={k: v for k, v in config.items()
                                                         if k not in ("WHOLE_TILE", "PAIR_TILE", "BIT_CAST")},
                         TBps=result, relative_error=error, seconds=round(time.time() - start, 1))
    else:
        for bits in (4, 8):
            for shape, parts in SHAPES.items():
                sets, nbytes = rotated_quantized_weights(bits, parts)
                x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
                for gated in ((True,) if shape == "gate|up" else (False,)):
                    emit(bits=bits, shape=shape, gated=gated, config="shipped",
                         TBps=timed(x, sets, nbytes, None, gated=gated))
                    grid = [(16, 512, 4), (8, 1024, 4), (16, 1024, 8), (32, 512, 8), (8, 2048, 8), (4, 2048, 4),
                            (16, 256, 2), (8, 512, 2), (32, 256, 4), (16, 2048, 8), (4, 4096, 8)]
                    for n, k, w in grid:
                        config = dict(BLOCK_M=1, BLOCK_N=n, BLOCK_K=k, num_warps=w, BIT_CAST=bits == 8)
                        emit(bits=bits, shape=shape, gated=gated, config=config,
                             TBps=timed(x, sets, nbytes, config, gated=gated))
