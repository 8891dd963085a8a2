"""Prototype (2026-11-28, twenty-third session): int4 one-row products whose inputs are read coalesced.

The shipped one-row int4 loop gives each lane two neighbouring words (16 inputs) and loads their 16 inputs as four
64-bit loads; neighbouring lanes' inputs lie 32 bytes apart, so each of those loads touches 32 sectors of L1 for
256 useful bytes: about 0.25 sectors of L1 a weight. At 4 sectors a cycle an SM then makes about 15 weights a cycle,
3.9 T weights/s on an H200's 132 SMs at 1.98 GHz, about 2.0 TB/s of codes, scales and offsets: what the shipped
loop streams (2.1-2.4 TB/s). Here each lane takes one word (8 neighbouring inputs) and neighbouring lanes take
neighbouring words, so a warp's 32 input loads of 16 bytes read 512 contiguous bytes (16 sectors: 0.06 a weight) and
its code loads 128 contiguous bytes. The loads are written in the inline PTX (Triton would otherwise vectorise the
codes four words a lane and undo the point); a word's four pairs of weights are made and multiplied as
quantized_decode_kernels.pair_dot_asm makes them.

    python benchmarks/results/coalesced_inputs_2026-11-28/next_coalesced.py            # on a GPU
    python benchmarks/results/coalesced_inputs_2026-11-28/next_coalesced.py inspect    # sm_90 SASS, no GPU
"""
import itertools
import json
import os
import sys
from collections import Counter

import torch
import triton
import triton.language as tl

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from quantized_decode_kernels import PAIR_MAGIC, PackedWeight, launch_quantized_kernel, reference_product  # noqa: E402


def word_dot_asm(kind: str, *, scales_in_asm: bool, code_hint: str) -> str:
    """$0 = sum over the word's 8 weights of (code * scale + offset) * input, float32. $1: the word's address, $2 its
    8 inputs' address (16 bytes), then the group's scale and offset: addresses (scales_in_asm) or 16-bit values."""
    magic, one = PAIR_MAGIC[kind]
    both = lambda value: f"0x{value:04X}{value:04X}"  # noqa: E731
    lines = [f"ld.global{code_hint}.b32 c, [$1];", "ld.global.v4.b32 {x0, x1, x2, x3}, [$2];",
             f"mov.b32 one, {both(one)};", f"mov.b32 bias, {both(magic | 0x8000)};", "mov.b32 zero, 0x80008000;"]
    if scales_in_asm:
        lines += ["ld.global.b16 s, [$3];", "ld.global.b16 o, [$4];"]
    else:
        lines += ["mov.b16 s, $3;", "mov.b16 o, $4;"]
    lines += ["mov.b32 s2, {s, s};", "mov.b32 o2, {o, o};"]
    for n in range(4):
        source = "c"
        if n:
            lines.append(f"shr.u32 t, c, {4 * n};")
            source = "t"
        lines += [f"lop3.b32 w, {source}, 0x000F000F, {both(magic)}, 0xEA;",
                  f"fma.rn.{kind}x2 w, w, one, bias;",
                  f"fma.rn.{kind}x2 w, w, s2, o2;",
                  f"fma.rn.{kind}x2 a2, w, x{n}, {'a2' if n else 'zero'};"]
    lines += ["mov.b32 {l, h}, a2;", f"cvt.f32.{kind} a, l;", f"cvt.f32.{kind} b, h;", "add.f32 $0, a, b;"]
    registers = [".reg .b32 c, t, w, a2, s2, o2, x0, x1, x2, x3, one, bias, zero;", ".reg .b16 l, h, s, o;",
                 ".reg .f32 a, b;"]
    return "\n".join(["{", *registers, *lines, "}"])


ASM = {(scales, hint): word_dot_asm("bf16", scales_in_asm=scales, code_hint=hint)
       for scales in (False, True) for hint in ("", ".L1::no_allocate")}


@triton.jit
def coalesced_int4_row_kernel(x_ptr, out_ptr, q_ptr, s_ptr, f_ptr, N, K: tl.constexpr, GROUP: tl.constexpr,
                              BLOCK_N: tl.constexpr, GROUPS: tl.constexpr, SCALES_IN_ASM: tl.constexpr,
                              ASM_TEXT: tl.constexpr):
    """out[0, rows] = x[0] @ dequantized(w[rows]).T for BLOCK_N rows, GROUPS groups (GROUP // 8 words each) a step;
    element (row, group, word) of each step is one word, lanes along the words."""
    WORDS: tl.constexpr = GROUP // 8
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    accumulator = tl.zeros((BLOCK_N, GROUPS, WORDS), dtype=tl.float32)
    for g0 in range(0, K // GROUP, GROUPS):
        groups = tl.minimum(g0 + tl.arange(0, GROUPS), K // GROUP - 1)  # clamped: steps past the end read the last
        inside = (g0 + tl.arange(0, GROUPS)) < K // GROUP
        word = groups[None, :, None] * WORDS + tl.arange(0, WORDS)[None, None, :]  # (1, GROUPS, WORDS)
        codes = q_ptr + rows[:, None, None] * (K // 8) + word
        inputs = tl.broadcast_to(x_ptr + 8 * word, (BLOCK_N, GROUPS, WORDS))
        where = groups[None, :, None] * N + rows[:, None, None]  # group-major scales and offsets
        if SCALES_IN_ASM:
            scale = tl.broadcast_to(s_ptr + where, (BLOCK_N, GROUPS, WORDS))
            offset = tl.broadcast_to(f_ptr + where, (BLOCK_N, GROUPS, WORDS))
            addresses = [codes.to(tl.int64), inputs.to(tl.int64), scale.to(tl.int64), offset.to(tl.int64)]
            dots = tl.inline_asm_elementwise(ASM_TEXT, "=r,l,l,l,l", addresses, dtype=tl.float32, is_pure=True,
                                             pack=1)
        else:
            scale = tl.broadcast_to(tl.load(s_ptr + where), (BLOCK_N, GROUPS, WORDS))
            offset = tl.broadcast_to(tl.load(f_ptr + where), (BLOCK_N, GROUPS, WORDS))
            dots = tl.inline_asm_elementwise(
                ASM_TEXT, "=r,l,l,h,h", [codes.to(tl.int64), inputs.to(tl.int64), scale.to(tl.uint16, bitcast=True),
                                         offset.to(tl.uint16, bitcast=True)], dtype=tl.float32, is_pure=True, pack=1)
        accumulator += tl.where(inside[None, :, None], dots, 0.0)
    tl.store(out_ptr + rows, tl.sum(tl.sum(accumulator, axis=2), axis=1).to(out_ptr.dtype.element_ty))


def coalesced_product(x: torch.Tensor, weight: PackedWeight, config: dict) -> torch.Tensor:
    """x (1, K) @ dequantized(one int4 weight).T."""
    rows, columns = weight.qweight.shape[0], x.shape[1]
    out = x.new_empty(1, rows)
    coalesced_int4_row_kernel[(rows // config["BLOCK_N"],)](
        x, out, weight.qweight, weight.scale, weight.offset, rows, K=columns, GROUP=columns // weight.scale.shape[0],
        BLOCK_N=config["BLOCK_N"], GROUPS=config["GROUPS"], SCALES_IN_ASM=config["SCALES_IN_ASM"],
        ASM_TEXT=ASM[config["SCALES_IN_ASM"], config["HINT"]], num_warps=config["num_warps"])
    return out


def stacked(weights: list[PackedWeight]) -> PackedWeight:
    return PackedWeight(torch.cat([w.qweight for w in weights]), torch.cat([w.scale for w in weights], 1).contiguous(),
                        torch.cat([w.offset for w in weights], 1).contiguous())


TILES = ((4, 8, 4), (8, 8, 4), (16, 8, 4), (8, 16, 4), (16, 8, 8), (32, 8, 8), (8, 4, 2), (16, 4, 4))
CONFIGS = ([{"BLOCK_N": n, "GROUPS": g, "num_warps": w, "SCALES_IN_ASM": scales, "HINT": ""}
            for (n, g, w), scales in itertools.product(TILES, (True, False))]
           + [{"BLOCK_N": n, "GROUPS": g, "num_warps": w, "SCALES_IN_ASM": True, "HINT": ".L1::no_allocate"}
              for n, g, w in TILES[:4]])


def inspect() -> None:
    """Registers and the main loop's instructions for some configurations, compiled for sm_90 without a GPU."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE))))
    from inspect_kernel import main_loop, tool_output
    import re
    names = coalesced_int4_row_kernel.arg_names
    types = {"x_ptr": "*bf16", "out_ptr": "*bf16", "q_ptr": "*i32", "s_ptr": "*bf16", "f_ptr": "*bf16", "N": "i32"}
    for config in CONFIGS:
        constants = {"K": 4096, "GROUP": 64, "BLOCK_N": config["BLOCK_N"], "GROUPS": config["GROUPS"],
                     "SCALES_IN_ASM": config["SCALES_IN_ASM"], "ASM_TEXT": ASM[config["SCALES_IN_ASM"], config["HINT"]]}
        source = ASTSource(fn=coalesced_int4_row_kernel, signature={n: types.get(n, "constexpr") for n in names},
                           constexprs={(names.index(n),): v for n, v in constants.items()},
                           attrs={(names.index(n),): [["tt.divisibility", 16]] for n in types})
        compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                                  options={"num_warps": config["num_warps"]}).asm
        usage = tool_output("cuobjdump", compiled["cubin"], "--dump-resource-usage")
        loop = main_loop(tool_output("nvdisasm", compiled["cubin"], "-c"))
        weights = config["BLOCK_N"] * config["GROUPS"] * 64 / (32 * config["num_warps"])
        print(config, "registers", re.search(r"REG:(\d+)", usage).group(1), f"{len(loop) / weights:.2f} a weight",
              dict(Counter(name.split(".")[0] for name in loop).most_common(8)),
              dict(Counter(name for name in loop if name.startswith("LDG"))))
        for layout in sorted(set(re.findall(r"#ttg\.blocked<\{[^}]*\}>", compiled["ttgir"]))):
            print("   ", layout)


def main() -> None:
    from profile_decode import replay_seconds, rotated_quantized_weights
    shapes = {"q|k|v": [(4096, 4096)] * 3, "o": [(4096, 4096)], "gate|up": [(11008, 4096)] * 2,
              "down": [(4096, 11008)]}
    with torch.no_grad():
        for shape, parts in shapes.items():
            sets, nbytes = rotated_quantized_weights(4, parts)
            whole = [stacked(weights) for weights in sets]
            x = torch.randn(1, parts[0][1], device="cuda", dtype=torch.bfloat16)
            reference = reference_product(x, sets[0]).float()
            for repeat in range(2):
                seconds = replay_seconds(lambda: [launch_quantized_kernel(x, w) for w in sets])
                print(json.dumps(dict(shape=shape, config="shipped", repeat=repeat,
                                      TBps=round(nbytes / seconds / 1e12, 3), us=round(seconds / 6 * 1e6, 2))),
                      flush=True)
            for config in CONFIGS:
                try:
                    error = float((coalesced_product(x, whole[0], config).float() - reference).norm()
                                  / reference.norm())
                    seconds = replay_seconds(lambda: [coalesced_product(x, w, config) for w in whole])
                except Exception as exception:  # noqa: BLE001 - a configuration that does not compile is reported
                    print(json.dumps(dict(shape=shape, config=config, error=str(exception)[:200])), flush=True)
                    continue
                print(json.dumps(dict(shape=shape, config=config, TBps=round(nbytes / seconds / 1e12, 3),
                                      us=round(seconds / 6 * 1e6, 2), relative_error=round(error, 5))), flush=True)


if __name__ == "__main__":
    inspect() if sys.argv[1:] == ["inspect"] else main()
