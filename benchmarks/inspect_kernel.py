"""What the GPU would run for one configuration of the quantized decode kernel, without a GPU: Triton compiles
`quantized_decode_kernels._quantized_kernel` for an H100 (sm_90) with its bundled ptxas, and nvdisasm lists the
machine code. Prints the registers per thread (which bound the warps an SM holds), the layouts Triton chose for the
loads, and the kernel's main loop: its instructions by kind, its loads by width, and the instructions it issues per
weight (RESULTS.md, "Quantized fast decoding", used this to read the int4 loop).

The pointer arguments are declared 16-byte aligned, as a launch on real tensors specialises them; without that the
loads compile to one element each, which is not what the GPU runs.

    python benchmarks/inspect_kernel.py --bits 4 --block_n 8 --block_k 512 --warps 4
    python benchmarks/inspect_kernel.py --bits 4 --block_m 128 --block_n 128 --block_k 128 --warps 4
    python benchmarks/inspect_kernel.py --prompt     # quantized_prompt_kernel.py (Gluon, sm_90 only)
    python benchmarks/inspect_kernel.py --prompt --block_m 16 --split_k 4   # its tile for up to 16 rows, split
    python benchmarks/inspect_kernel.py --row gated --bits 4 --capability 86   # quantized_row_kernel.py (Gluon)
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import quantized_prompt_kernel  # noqa: E402
import quantized_row_kernel  # noqa: E402
from quantized_decode_kernels import FRAGMENT_PAIR_ASM, _quantized_kernel  # noqa: E402
from weight_quantization import INT4_GROUP_SIZE  # noqa: E402

TOOLS = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
INSTRUCTION = re.compile(r"^\s*/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)")


def _argument_types(dtype: str, codes: str) -> dict:
    """The decode kernels' tensor and size arguments for a `dtype` input and weights of `codes` (*i32, *i8)."""
    types = {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "n0": "i32", "n01": "i32", "M": "i32", "N": "i32"}
    types.update({name: codes for name in ("q0", "q1", "q2")})
    types.update({name: f"*{dtype}" for name in ("s0", "s1", "s2", "f0", "f1", "f2")})
    return types


def _compiled(source_type, kernel, *, types: dict, constants: dict, capability: int, options: dict) -> dict:
    """`kernel` compiled for a GPU of this compute capability, the pointers and the weights' sizes declared 16-byte
    aligned as a launch on real tensors specialises them: its code by stage (`ptx`, `cubin`, `ttgir`, ...)."""
    names = kernel.arg_names
    aligned = [name for name, kind in types.items() if kind.startswith("*") or name in ("n0", "n01", "N")]
    source = source_type(fn=kernel, signature={name: types.get(name, "constexpr") for name in names},
                         constexprs={(names.index(name),): value for name, value in constants.items()},
                         attrs={(names.index(name),): [["tt.divisibility", 16]] for name in aligned})
    return triton.compile(source, target=GPUTarget("cuda", capability, 32), options=options).asm


def compile_kernel(*, bits: int, block_n: int, block_k: int, warps: int, bit_cast: bool, columns: int,
                   block_m: int = 1, weights_first: bool = False, dtype: str = "bf16",
                   capability: int = 90, stages: int = 3, split_k: int = 1) -> dict:
    """The kernel compiled for a `dtype` input (bf16 or fp16; one row, or tiles of `block_m` rows software-pipelined
    `stages` deep, their inputs split among `split_k` programs) and a GPU of this compute capability: its code by
    stage (`ptx`, `cubin`, `ttgir`, ...)."""
    int4 = bits == 4
    types = {**_argument_types(dtype, "*i32" if int4 else "*i8"), "partials_ptr": "*fp32"}
    constants = {"K": columns, "GROUP": INT4_GROUP_SIZE if int4 else columns, "INT4": int4, "BLOCK_M": block_m,
                 "BLOCK_N": block_n, "BLOCK_K": block_k, "BIT_CAST": bit_cast, "WEIGHTS_FIRST": weights_first,
                 "SPLIT_K": split_k}
    return _compiled(ASTSource, _quantized_kernel, types=types, constants=constants, capability=capability,
                     options={"num_warps": warps, "num_stages": stages})


def compile_row_kernel(*, bits: int, tile: tuple | None = None, columns: int = 4096, dtype: str = "bf16",
                       capability: int = 90, variant: str = "plain") -> dict:
    """quantized_row_kernel.py's one-row Gluon kernel (`variant`: plain, gated, or norm: the residual add and RMSNorm
    by the last program) compiled for a GPU of this compute capability, tile (R, C, WR, WC; by default the first of
    ROW_TILES): its code by stage."""
    from triton.experimental.gluon._runtime import GluonASTSource
    torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    constants = {"K": columns, "GROUP": INT4_GROUP_SIZE if bits == 4 else columns, "INT4": bits == 4,
                 **quantized_row_kernel.kernel_constants(torch_dtype, bits),
                 **dict(zip(("R", "C", "WR", "WC"), tile or quantized_row_kernel.ROW_TILES[0]))}
    codes = "*i32" if bits == 4 else "*i8"
    if variant == "norm":
        kernel = quantized_row_kernel.residual_norm_kernel
        types = {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "q_ptr": codes, "s_ptr": f"*{dtype}",
                 "f_ptr": f"*{dtype}", "arrivals_ptr": "*i32", "eps": "fp32", "N": "i32",
                 **{name: f"*{dtype}" for name in ("residual_ptr", "norm_ptr", "hidden_ptr", "normed_ptr")}}
        constants["NORM_BLOCK"] = 4096
    else:
        kernel = quantized_row_kernel.row_kernel
        types = {**_argument_types(dtype, codes)}
        types.pop("M")
        constants["GATED"] = variant == "gated"
    return _compiled(GluonASTSource, kernel, types=types, constants=constants, capability=capability,
                     options={"num_warps": constants["WR"] * constants["WC"]})


def row_report(options: dict) -> str:
    """The one-row Gluon kernel's registers, spills and instructions by kind (its dp4a: IDP)."""
    tile = tuple(options["tile"] or quantized_row_kernel.ROW_TILES[0])
    compiled = compile_row_kernel(bits=options["bits"], tile=tile, columns=options["columns"], dtype=options["dtype"],
                                  capability=options["capability"], variant=options["variant"])
    usage = tool_output("cuobjdump", compiled["cubin"], "--dump-resource-usage")
    registers, stack = re.search(r"REG:(\d+)", usage), re.search(r"STACK:(\d+)", usage)
    sass = tool_output("nvdisasm", compiled["cubin"], "-c")
    kinds = Counter(match.group(1).split(".")[0] for line in sass.splitlines() if (match := INSTRUCTION.match(line)))
    loads = Counter(match.group(1) for line in sass.splitlines()
                    if (match := INSTRUCTION.match(line)) and match.group(1).startswith("LDG"))
    return "\n".join([
        f"int{options['bits']} one row on dp4a ({options['variant']}), tile (R, C, WR, WC) = {tile}, "
        f"{options['dtype']} input, rows of {options['columns']} inputs, sm_{options['capability']}",
        f"registers per thread: {registers.group(1) if registers else 'unknown'}, "
        f"stack: {stack.group(1) if stack else 'unknown'}",
        "by kind: " + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common()),
        "loads: " + ", ".join(f"{kind} {count}" for kind, count in loads.most_common())])


def compile_prompt_kernel(*, dtype: str = "bf16", columns: int = 4096, rows: int = 128, split_k: int = 1,
                          mma_v2: bool = False, capability: int = 90) -> dict:
    """quantized_prompt_kernel.py's Gluon kernel compiled for a GPU of this compute capability and a `dtype` input,
    its first tile (BUCKET_TILES) of `rows` rows a program, this split and instruction: its code by stage."""
    from triton.experimental.gluon._runtime import GluonASTSource
    prompt = quantized_prompt_kernel
    torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    tile = next(config for config in prompt.tile_configs()
                if config["BLOCK_ROWS"] == rows and config["SPLIT_K"] == split_k and config["MMA_V2"] == mma_v2)
    a_layout, words_layout = prompt.fragment_layouts(prompt.BLOCK_OUT, prompt.WARPS)
    constants = {"K": columns, "PAIR_ASM": FRAGMENT_PAIR_ASM[torch_dtype], "BLOCK_OUT": prompt.BLOCK_OUT,
                 "WARPS": prompt.WARPS, "a_layout": a_layout, "words_layout": words_layout,
                 **{name: value for name, value in tile.items() if name != "num_warps"}}
    return _compiled(GluonASTSource, prompt.prompt_kernel,
                     types={**_argument_types(dtype, "*i32"), "partials_ptr": "*fp32"}, constants=constants,
                     capability=capability, options={"num_warps": prompt.WARPS})


def prompt_report(dtype: str, *, rows: int, split_k: int, mma_v2: bool, capability: int) -> str:
    """The Gluon prompt kernel's resources and loop; whether its tensor-core instruction takes the weights from
    registers."""
    compiled = compile_prompt_kernel(dtype=dtype, rows=rows, split_k=split_k, mma_v2=mma_v2, capability=capability)
    usage = tool_output("cuobjdump", compiled["cubin"], "--dump-resource-usage")
    sass = tool_output("nvdisasm", compiled["cubin"], "-c")
    loop = main_loop(sass)
    weights_per_thread = quantized_prompt_kernel.BLOCK_OUT * quantized_prompt_kernel.GROUP / (
        32 * quantized_prompt_kernel.WARPS)
    operands = "registers" if re.search(r"HGMMA\.\S+ R\d+, R\d+, gdesc|HMMA\.16816", sass) else "shared memory"
    registers, stack = (re.search(pattern, usage).group(1) for pattern in (r"REG:(\d+)", r"STACK:(\d+)"))
    return "\n".join([
        f"int4 several-row kernel (Gluon), {dtype} input, {rows} rows a program, split {split_k}, "
        f"{'mma.sync' if mma_v2 else 'wgmma'}, sm_{capability}",
        f"registers per thread: {registers}, stack: {stack} bytes",
        f"the tensor cores' weights from: {operands}",
        f"main loop: {len(loop)} instructions for {weights_per_thread:.0f} weights a thread "
        f"({len(loop) / weights_per_thread:.2f} per weight)",
        "  by kind: " + ", ".join(f"{kind} {count}" for kind, count in Counter(
            name.split(".")[0] for name in loop).most_common())])


def tool_output(tool: str, cubin: bytes, *flags: str) -> str:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as handle:
        handle.write(cubin)
        handle.flush()
        return subprocess.run([os.path.join(TOOLS, tool), *flags, handle.name], capture_output=True, text=True,
                              check=True).stdout


def main_loop(sass: str) -> list[str]:
    """The instructions of the longest loop, from a label to a branch back to it (not the one-instruction loop that
    ends every kernel); none when the compiler unrolled the loop."""
    lines = sass.splitlines()
    labels, loops = {}, []
    for index, line in enumerate(lines):
        if label := re.match(r"^(\.L_x_\d+):", line):
            labels[label.group(1)] = index
        elif (branch := re.search(r"BRA\s+`?\(?(\.L_x_\d+)", line)) and branch.group(1) in labels:
            loops.append((labels[branch.group(1)], index))  # a branch back to a label above it
    loops = [(start, end) for start, end in loops if end - start > 2]
    if not loops:
        return []
    start, end = max(loops, key=lambda loop: loop[1] - loop[0])
    return [match.group(1) for line in lines[start:end + 1] if (match := INSTRUCTION.match(line))]


def arithmetic(options: dict) -> str:
    """How the configuration turns codes into products."""
    if options["bits"] == 4:
        return "16-bit pairs"
    return "bit tricks" if options["bit_cast"] and options["block_m"] == 1 else "conversions"


def report(options: dict) -> str:
    """`options`: compile_kernel's arguments."""
    compiled = compile_kernel(**options)
    registers = re.search(r"REG:(\d+)", tool_output("cuobjdump", compiled["cubin"], "--dump-resource-usage"))
    sass = tool_output("nvdisasm", compiled["cubin"], "-c")
    block_n, block_k, threads = options["block_n"], options["block_k"], options["warps"] * 32
    loop, span = main_loop(sass), "main loop"
    weights_per_thread = block_n * block_k / threads  # each loop iteration, whatever the input rows
    if not loop:  # unrolled: the whole kernel streams every input once
        loop = [match.group(1) for line in sass.splitlines() if (match := INSTRUCTION.match(line))]
        span, weights_per_thread = "whole kernel (its loop unrolled)", block_n * options["columns"] / threads
    kinds = Counter(name.split(".")[0] for name in loop)
    loads = Counter(name for name in loop if name.startswith("LDG"))
    layouts = sorted(set(re.findall(r"#ttg\.blocked<\{[^}]*\}>", compiled["ttgir"])))
    shape = (f"{block_n} rows x {block_k} inputs a step" if options["block_m"] == 1 else
             f"tiles of {options['block_m']} input rows x {block_n} weight rows x {block_k} inputs"
             f"{', weights first' if options['weights_first'] else ''}"
             f", {options['stages']} stages, inputs split {options['split_k']} ways")
    lines = [f"int{options['bits']}, {shape}, {options['warps']} warps, {arithmetic(options)}, "
             f"{options['dtype']} input, rows of {options['columns']} inputs, sm_{options['capability']}",
             f"registers per thread: {registers.group(1) if registers else 'unknown'}",
             "load layouts:", *(f"  {layout}" for layout in layouts),
             f"{span}: {len(loop)} instructions for {weights_per_thread:.0f} weights a thread "
             f"({len(loop) / weights_per_thread:.2f} per weight)",
             "  by kind: " + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common()),
             "  loads: " + ", ".join(f"{kind} {count}" for kind, count in loads.most_common())]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bits", type=int, choices=[4, 8], default=4)
    parser.add_argument("--block_m", type=int, default=1, help="input rows a program (1: the one-row kernel)")
    parser.add_argument("--block_n", type=int, default=8, help="weight rows a program")
    parser.add_argument("--block_k", type=int, default=1024, help="inputs a loop step")
    parser.add_argument("--warps", type=int, default=8)
    parser.add_argument("--stages", type=int, default=3, help="software-pipeline depth (several rows)")
    parser.add_argument("--split_k", type=int, default=1, help="several rows: programs sharing a tile's inputs")
    parser.add_argument("--weights_first", action="store_true", help="several rows: w @ x.T, not x @ w.T")
    parser.add_argument("--bit_cast", action="store_true",
                        help="int8, one row: codes become floats by bit tricks, not conversions")
    parser.add_argument("--dtype", choices=["bf16", "fp16"], default="bf16", help="the input's type")
    parser.add_argument("--capability", type=int, default=90, help="the GPU's compute capability (H100: 90)")
    parser.add_argument("--columns", type=int, default=4096, help="the weight's input width (Llama-2-7B: 4096, 11008)")
    parser.add_argument("--prompt", action="store_true",
                        help="the Gluon int4 several-row kernel instead (quantized_prompt_kernel.py; --dtype, "
                             "--block_m: rows a program, 8-128, default 128; --split_k, --capability apply)")
    parser.add_argument("--mma_v2", action="store_true", help="--prompt: its mma.sync tile instead of wgmma's")
    parser.add_argument("--row", choices=["plain", "gated", "norm"],
                        help="the Gluon one-row kernel on dp4a instead (quantized_row_kernel.py; --bits, --dtype, "
                             "--capability, --columns and --tile apply)")
    parser.add_argument("--tile", type=int, nargs=4, metavar=("R", "C", "WR", "WC"),
                        help="--row: rows and chunks a thread, warps along the rows and along the inputs (default: the "
                             "first of quantized_row_kernel.ROW_TILES)")
    options = vars(parser.parse_args())
    prompt, row, tile, mma_v2 = (options.pop(name) for name in ("prompt", "row", "tile", "mma_v2"))
    if prompt:
        rows = options["block_m"] if options["block_m"] > 1 else 128
        print(prompt_report(options["dtype"], rows=rows, split_k=options["split_k"], mma_v2=mma_v2,
                            capability=options["capability"]))
    elif row:
        print(row_report({**options, "variant": row, "tile": tile}))
    else:
        print(report(options))


if __name__ == "__main__":
    main()
