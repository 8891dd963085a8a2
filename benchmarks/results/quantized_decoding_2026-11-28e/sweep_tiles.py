"""Sweep (2026-11-28, eighteenth session): int4 tiles at 8, 32 and 96 rows over the four 7B shapes with 2, 4 and 8
warps, steps of 64-256 inputs and 2-4 pipeline stages (earlier sweeps held 4 warps and steps of 128-256: the prompt
tiles ran one 4-warp program an SM), against the shipped autotuned launch and bf16 `F.linear` (cuBLAS) over the same
shapes. 6 weight copies rotated, CUDA-graph replays; TB/s of int4 codes, scales and offsets (bf16: the microseconds
are the comparable figure), and each tile's relative error against dequantize-then-matmul.

The `split` family (run in the second call): the inputs of each tile split among 1-8 programs (SPLIT_K), float32
partial sums added in order by a second kernel, on tiles small enough for several programs an SM. `split8`: the same
for int8 (f.sh).

`compile` launches every configuration once in worker processes (filling Triton's cache), so that the timing process
only times.
    python benchmarks/results/quantized_decoding_2026-11-28e/sweep_tiles.py compile tiles|split|split8 WORKERS
    python benchmarks/results/quantized_decoding_2026-11-28e/sweep_tiles.py time tiles|split|split8 ROWS[,ROWS...]"""
import itertools
import json
import multiprocessing
import sys

import torch
import torch.nn.functional as F
import triton

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from profile_decode import replay_seconds, rotated_quantized_weights  # noqa: E402
from quantized_decode_kernels import launch_quantized_kernel, reference_product  # noqa: E402

SHAPES = {"q|k|v": [(4096, 4096)] * 3, "o": [(4096, 4096)], "gate|up": [(11008, 4096)] * 2, "down": [(4096, 11008)]}
ROWS = (8, 32, 96)


def configs(rows: int) -> list[dict]:
    """Batches (8 rows): weights first, 16 input rows; 32 and prompts (96): either way round, with 2-4 stages."""
    if rows <= 8:
        grid = itertools.product((True,), (16,), (32, 64, 128), (64, 128, 256), (2, 3, 4), (2, 4, 8))
    elif rows <= 32:
        grid = itertools.product((True, False), (32,), (64, 128), (64, 128, 256), (2, 3), (4, 8))
    else:
        grid = itertools.product((True, False), (64, 128), (64, 128, 256), (64, 128, 256), (2, 3, 4), (4, 8))
    return [dict(WEIGHTS_FIRST=first, BLOCK_M=m, BLOCK_N=n, BLOCK_K=k, num_stages=stages, num_warps=warps)
            for first, m, n, k, stages, warps in grid
            if not ((n == 256 and warps < 8) or (warps == 2 and n > 64) or (n == 32 and warps == 8)
                    or (stages == 4 and k == 256) or (m == 64 and n == 256))]


SPLIT_TILES = {8: [(True, 16, 64, 256, 3), (True, 16, 64, 128, 3), (True, 16, 64, 64, 3), (True, 16, 64, 64, 4),
                   (True, 16, 128, 128, 3), (True, 16, 32, 128, 3), (True, 16, 64, 128, 2)],
               32: [(True, 32, 64, 256, 3), (True, 32, 64, 128, 3), (True, 32, 64, 64, 3), (False, 32, 64, 128, 3),
                    (True, 32, 128, 128, 3)],
               96: [(False, 128, 128, 128, 3), (True, 128, 64, 64, 3), (True, 128, 64, 64, 4), (False, 64, 64, 256, 3),
                    (True, 128, 64, 128, 3), (False, 128, 64, 64, 3), (False, 128, 128, 64, 3), (True, 64, 64, 128, 3),
                    (False, 64, 64, 128, 3), (True, 128, 128, 64, 3)]}


# int8: the tiles its buckets list (ROWS_TILES), and a few with shorter steps
INT8_SPLIT_TILES = {8: [(False, 16, 64, 128, 3), (True, 16, 32, 256, 3), (True, 16, 64, 128, 3), (True, 16, 64, 64, 3),
                        (True, 16, 128, 128, 3)],
                    32: [(False, 32, 64, 128, 3), (True, 32, 64, 128, 3), (True, 32, 64, 256, 3),
                         (True, 32, 64, 64, 3)],
                    96: [(True, 128, 64, 128, 3), (True, 64, 64, 256, 3), (True, 64, 64, 128, 3),
                         (False, 128, 128, 64, 3)]}


def split_configs(rows: int, tiles: dict = SPLIT_TILES) -> list[dict]:
    return [dict(WEIGHTS_FIRST=first, BLOCK_M=m, BLOCK_N=n, BLOCK_K=k, num_stages=stages, num_warps=4, SPLIT_K=split)
            for (first, m, n, k, stages), split in itertools.product(tiles[rows], (1, 2, 4, 8))]


FAMILIES = {"tiles": configs, "split": split_configs,
            "split8": lambda rows: split_configs(rows, INT8_SPLIT_TILES)}
BITS = {"tiles": 4, "split": 4, "split8": 8}


def emit(**fields):
    print(json.dumps(fields), flush=True)


def compile_part(part: list) -> None:
    for bits, shape, rows, config in part:
        parts = SHAPES[shape]
        weights = rotated_quantized_weights(bits, parts, copies=1)[0][0]
        x = torch.randn(rows, parts[0][1], device="cuda", dtype=torch.bfloat16)
        try:
            launch_quantized_kernel(x, weights, config)
        except Exception:  # noqa: BLE001 - the timing process reports it
            pass
    torch.cuda.synchronize()


def compile_all(family: str, workers: int) -> None:
    # Triton's cache keys by K (a constexpr) and the configuration, not by N: one shape per K is enough
    jobs = [(BITS[family], shape, rows, config) for rows in ROWS for config in FAMILIES[family](rows)
            for shape in ("o", "down")]
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        pool.map(compile_part, [jobs[index::workers] for index in range(workers)])
    emit(compiled=len(jobs))


def time_rows(family: str, rows_list: list[int]) -> None:
    for rows in rows_list:
        for shape, parts in SHAPES.items():
            sets, nbytes = rotated_quantized_weights(BITS[family], parts)
            x = torch.randn(rows, parts[0][1], device="cuda", dtype=torch.bfloat16)
            plain = [torch.randn(sum(n for n, _ in parts), parts[0][1], device="cuda", dtype=torch.bfloat16)
                     for _ in range(6)]
            seconds = replay_seconds(lambda: [F.linear(x, w) for w in plain])
            emit(shape=shape, rows=rows, config="bf16 F.linear", us=round(seconds / 6 * 1e6, 2))
            seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w) for w in sets])
            emit(shape=shape, rows=rows, config="shipped", us=round(seconds / 6 * 1e6, 2),
                 TBps=round(nbytes / seconds / 1e12, 3))
            reference = reference_product(x, sets[0]).float()
            for config in FAMILIES[family](rows):
                try:
                    error = (launch_quantized_kernel(x, sets[0], config).float() - reference).norm() / reference.norm()
                    seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w, config) for w in sets])
                    emit(shape=shape, rows=rows, config=config, us=round(seconds / 6 * 1e6, 2),
                         TBps=round(nbytes / seconds / 1e12, 3), relative_error=round(float(error), 5))
                except (triton.runtime.errors.OutOfResources, RuntimeError, AssertionError) as error:
                    emit(shape=shape, rows=rows, config=config, error=str(error)[:80])


if __name__ == "__main__":
    with torch.no_grad():
        if sys.argv[1] == "compile":
            compile_all(sys.argv[2], int(sys.argv[3]))
        else:
            time_rows(sys.argv[2], [int(rows) for rows in sys.argv[3].split(",")])
