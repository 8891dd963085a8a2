"""Prepared (2026-11-28, twenty-third session), run 2026-11-29: what a grid barrier costs against a launch boundary.

A one-row product launch costs about 3.0 us (int4) and 3.4 us (int8) beyond its bytes, and does not get shorter with
its weights in L2 (../l2_prefetch_2026-11-28/). A step that ran a layer's products without returning to the host
would replace each boundary with a barrier among resident programs; whether that saves much depends on what the
barrier costs and on how much of the 3 us is the boundary itself (the rest: programs finishing unevenly, the first
loads' latency). Measured here on a chain of P dependent 4096 x 4096 products (each one's output the next one's
input; P distinct weights, so L2 holds few), one row:
- `launches`: the shipped autotuned launch, P launches in a CUDA graph;
- `persistent`: one launch of `chain_kernel`, its programs (`--programs_per_sm` times the SMs, all resident) taking
  row blocks of each product in turn and meeting at a counter between products;
- `persistent, one product a launch`: the same kernel with P = 1, launched P times (its tiling without barriers).
Microseconds a product, and the last output's relative error against the launches'.

    python benchmarks/results/persistent_chain_2026-11-28/chain.py --output chain.jsonl                # on a GPU
    python benchmarks/results/persistent_chain_2026-11-28/chain.py inspect                             # sm_90, no GPU
"""
import argparse
import itertools
import os
import sys

import torch
import triton
import triton.language as tl

BENCHMARKS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(BENCHMARKS))
sys.path.insert(0, BENCHMARKS)

from quantized_decode_kernels import _row_dots, launch_quantized_kernel, packed_weight  # noqa: E402


@triton.jit
def chain_kernel(x_ptr, outs_ptr, q_ptr, s_ptr, f_ptr, counter_ptr, P, N: tl.constexpr, GROUP: tl.constexpr,
                 INT4: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BIT_CAST: tl.constexpr):
    """outs[p] = outs[p - 1] @ dequantized(w_p).T (outs[-1] = x) for p < P, square weights stacked along their rows
    (int4 scales and offsets (P, N / GROUP, N), int8 scales (P, N)). The programs, all resident, take row blocks in
    turn and meet at `counter_ptr` (zero at the start) after each product."""
    programs = tl.num_programs(0)
    q_p, s_p, f_p = q_ptr, s_ptr, f_ptr  # product p's weights, advanced one product a step
    for p in range(P):
        x_in = x_ptr if p == 0 else outs_ptr + (p - 1) * N
        for block in range(tl.program_id(0), N // BLOCK_N, programs):
            rows = block * BLOCK_N + tl.arange(0, BLOCK_N)
            dots = _row_dots(q_p, s_p, f_p, x_in, rows, N, N, GROUP, INT4, BLOCK_N, BLOCK_K, BIT_CAST)
            tl.store(outs_ptr + p * N + rows, dots.to(outs_ptr.dtype.element_ty))
        q_p += N * (N // 8) if INT4 else N * N
        s_p += (N // GROUP) * N if INT4 else N
        f_p += (N // GROUP) * N if INT4 else N
        tl.debug_barrier()  # every thread's stores before the release
        tl.atomic_add(counter_ptr, 1, sem="release", scope="gpu")
        target = (p + 1) * programs
        arrived = tl.atomic_add(counter_ptr, 0, sem="acquire", scope="gpu")
        while arrived < target:
            arrived = tl.atomic_add(counter_ptr, 0, sem="acquire", scope="gpu")
        tl.debug_barrier()


def stacked(weights: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The chain's weights as chain_kernel takes them: codes stacked along rows, scales (int4: and offsets) by
    product."""
    codes = torch.cat([w.qweight for w in weights])
    scales = torch.stack([w.scale for w in weights]).contiguous()
    offsets = torch.stack([w.offset for w in weights]).contiguous() if weights[0].offset is not None else scales
    return codes, scales, offsets


def weights_from(packed: tuple, first: int, size: int) -> tuple:
    """The stacked codes, scales and offsets (`stacked`) from product `first` on."""
    codes, scales, offsets = packed
    per_product = scales.shape[1] * scales.shape[2]
    return codes[first * size:], scales.view(-1)[first * per_product:], offsets.view(-1)[first * per_product:]


def launch_chain(x_in: torch.Tensor, outs: torch.Tensor, packed: tuple, *, first: int, count: int,
                 counter: torch.Tensor, config: dict, programs: int):
    """chain_kernel over products first..first + count - 1 of the stacked weights, from `x_in` into `outs`; returns
    the compiled kernel."""
    size, int4 = x_in.shape[-1], packed[0].dtype == torch.int32
    return chain_kernel[(programs,)](
        x_in, outs, *weights_from(packed, first, size), counter, count, N=size,
        GROUP=size // packed[1].shape[1] if int4 else size, INT4=int4, BLOCK_N=config["BLOCK_N"],
        BLOCK_K=config["BLOCK_K"], BIT_CAST=False, num_warps=config["num_warps"])


def run_chain(x: torch.Tensor, packed: tuple, *, config: dict, programs: int, counters: torch.Tensor,
              one_product_a_launch: bool) -> torch.Tensor:
    """The chain through chain_kernel: one launch, or one launch a product (each with its own counter)."""
    products = packed[1].shape[0]
    outs = x.new_empty(products, x.shape[-1])
    counters.zero_()
    launches = [(p, 1) for p in range(products)] if one_product_a_launch else [(0, products)]
    for first, count in launches:
        launch_chain(outs[first - 1] if first else x, outs[first:], packed, first=first, count=count,
                     counter=counters[first:], config=config, programs=programs)
    return outs[-1]


def resident_programs(x: torch.Tensor, packed: tuple, config: dict) -> int:
    """How many programs of this configuration an SM holds at once (registers and warps; no shared memory beyond
    the barrier's), from a launch that runs no product."""
    compiled = launch_chain(x, torch.empty_like(x), packed, first=0, count=0,
                            counter=torch.zeros(1, dtype=torch.int32, device=x.device), config=config, programs=1)
    registers = -(-compiled.n_regs // 8) * 8 * 32 * config["num_warps"]
    return min(65536 // registers, 64 // config["num_warps"], 32)


def run_launches(x: torch.Tensor, weights: list) -> torch.Tensor:
    for weight in weights:
        x = launch_quantized_kernel(x, [weight])
    return x[0]


CONFIGS = [{"BLOCK_N": n, "BLOCK_K": k, "num_warps": w} for n, k, w in ((8, 512, 4), (8, 1024, 8), (4, 1024, 4))]


def inspect() -> None:
    """chain_kernel compiled for sm_90 without a GPU: registers and whether it compiles."""
    import re

    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from inspect_kernel import tool_output
    names = chain_kernel.arg_names
    for bits, config in itertools.product((4, 8), CONFIGS):
        types = {"x_ptr": "*bf16", "outs_ptr": "*bf16", "q_ptr": "*i32" if bits == 4 else "*i8", "s_ptr": "*bf16",
                 "f_ptr": "*bf16", "counter_ptr": "*i32", "P": "i32"}
        constants = {"N": 4096, "GROUP": 64 if bits == 4 else 4096, "INT4": bits == 4, "BLOCK_N": config["BLOCK_N"],
                     "BLOCK_K": config["BLOCK_K"], "BIT_CAST": False}
        source = ASTSource(fn=chain_kernel, signature={n: types.get(n, "constexpr") for n in names},
                           constexprs={(names.index(n),): v for n, v in constants.items()},
                           attrs={(names.index(n),): [["tt.divisibility", 16]] for n in types if types[n][0] == "*"})
        compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                                  options={"num_warps": config["num_warps"]}).asm
        usage = tool_output("cuobjdump", compiled["cubin"], "--dump-resource-usage")
        releases, acquires = (len(re.findall(pattern, compiled["ptx"]))
                              for pattern in (r"atom\.\S*release", r"acquire"))
        print(f"int{bits}", config, "registers", re.search(r"REG:(\d+)", usage).group(1), "release atomics",
              releases, "acquire loads", acquires)


def main() -> None:
    from bench_records import append_record
    from profile_decode import replay_seconds
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="chain.jsonl")
    parser.add_argument("--products", type=int, default=32)
    parser.add_argument("--programs_per_sm", default="1,2,4")
    args = parser.parse_args()
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    counters = torch.zeros(args.products, dtype=torch.int32, device="cuda")
    for bits in (4, 8):
        torch.manual_seed(0)
        weights = [packed_weight(torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16) / 64, bits)
                   for _ in range(args.products)]
        packed = stacked(weights)
        x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
        reference = run_launches(x, weights).float()
        launches_us = replay_seconds(lambda: run_launches(x, weights)) / args.products * 1e6
        append_record(args.output, dict(bits=bits, way="launches", us=launches_us))
        for config in CONFIGS:
            resident = resident_programs(x, packed, config)
            for per_sm in map(int, args.programs_per_sm.split(",")):
                if per_sm > resident:  # programs that cannot all be resident would wait at the barrier for ever
                    append_record(args.output, dict(bits=bits, config=config, per_sm=per_sm, skipped=resident))
                    continue
                for one_product_a_launch in (False, True):
                    def call(config=config, programs=sms * per_sm, one=one_product_a_launch):
                        return run_chain(x, packed, config=config, programs=programs, counters=counters,
                                         one_product_a_launch=one)
                    error = float((call().float() - reference).norm() / reference.norm())
                    us = replay_seconds(call) / args.products * 1e6
                    way = "persistent, one product a launch" if one_product_a_launch else "persistent"
                    append_record(args.output, dict(bits=bits, way=way, config=config, programs=sms * per_sm,
                                                    resident=resident, us=us, saved_us=launches_us - us,
                                                    relative_error=error))

if __name__ == "__main__":
    if sys.argv[1:] == ["inspect"]:
        inspect()
    else:
        with torch.no_grad():
            main()
