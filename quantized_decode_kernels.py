"""Decoding products over weight-only quantized projections (Triton), read straight from the packed bytes.

The layouts are weight_quantization.py's: int8 rows with one scale each, and int4 groups (eight codes per int32 word,
its even inputs in the low half, its odd inputs in the high half) with a scale and an offset each. A
decode step reads every weight once, so reading 1 byte (int8) or half a byte (int4) per weight instead of bf16's 2 is
what makes it faster; the kernels never write a dequantized weight. One launch serves up to three weights of the same
input width (q|k|v, gate|up), like decode_kernels.py.

- One row (batch-1 decoding): each program streams a few weight rows, dequantizing each weight in registers. int8
  converts its codes to float32 (by conversion instructions or by bit tricks, `_int8_to_float`) and multiply-adds.
  int4 was bound by issuing instructions, 8.2 a weight in float32 (Nsight Compute); it now works in pairs of the
  input's 16-bit type by inline PTX (`pair_dot_asm`): two neighbouring words (one 64-bit load) become 16 weights as
  dequantize() gives them, which meet their 16 inputs (four 64-bit loads) two an instruction.
  The block sizes (and int8's conversion) are whichever is faster on the GPU at hand among ROW_CONFIGS, timed on
  first use (Triton's autotune, replayed from CUDA graphs: `_replayed_timings`; the timings kept in Triton's cache
  directory, so a machine times them once). Weights are loaded with `evict_first` (read once, they would push the
  input, scales and offsets out of L1). gate|up applies the SiLU gate in the same launch (`GATED`), as
  decode_kernels.py does for bf16, and a product followed by a residual add and an RMSNorm (o, down) may do those
  too, in its last program (`quantized_residual_norm`, as decode_kernels.matvec_residual_norm). Figures:
  benchmarks/RESULTS.md, "Quantized fast decoding".
- Several rows (batched decoding, prompts): each step's tile of the weight is dequantized to the input's dtype in
  registers (int4 two words at a time by inline PTX, `pair_weights_asm`; its columns come out in the input's order)
  and multiplied on the tensor cores, as x @ w.T or weights first, w @ x.T (weight rows on the products' M side, which
  a tensor-core instruction wants 64 wide, and the few input rows on the N side, which may be 16). A weight of few
  tiles (4096 outputs: o, down) would leave most of the GPU idle, so a tile's steps may be split among programs that
  each write float32 partial sums, added by a second small kernel (`SPLIT_K`). Which, and the tile sizes, are timed
  on first use per weight shape and bucket of rows (ROWS_TILES), by CUDA-graph replays as the decoder runs them.
  int4 products of several rows on Hopper (up to 32 rows on sm_80-89) take quantized_prompt_kernel.py (Gluon)
  instead, which hands the dequantized weights to the tensor cores in registers (its tiles and splits timed the same
  way).
  Long prompts (DEQUANTIZED_ROWS rows or more) dequantize the weights into one copy instead and multiply on cuBLAS,
  whose tiles then outrun these by more than the copy costs (`dequantized_product`).
- One row on sm_80 and later goes to quantized_row_kernel.py (Gluon) instead: its threads load the input once for
  several rows and cut it into exact int8 limbs that meet the codes in dp4a (batch 1 on an H200: int4 1.11x, int8
  1.18x the tokens a second of this launch).
Anything else (CPU, float32 inputs, sizes the kernels do not tile) dequantizes and calls `F.linear`, the reference the
kernels are tested against (tests/test_quantized_kernels.py, under Triton's interpreter on the CPU).
"""

import inspect
import os
import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F

try:
    import triton
    import triton.language as tl
    import triton.testing
except ImportError:  # CPU-only installs: the op falls back to dequantize + F.linear
    triton = None

try:
    from .decode_kernels import (
        define_op, fuses_residual_norm, launch_residual_norm, one_row, residual_norm, residual_norm_by_last,
    )
    from .quantized_prompt_kernel import bucket as prompt_bucket
    from .quantized_prompt_kernel import fitting_configs as prompt_fitting_configs
    from .quantized_prompt_kernel import launch as launch_prompt_kernel
    from .quantized_prompt_kernel import most_splits, prompt_kernel, takes_prompt_kernel
    from .quantized_prompt_kernel import tile_configs as prompt_tile_configs
    from .quantized_row_kernel import (
        MIN_NORM_BLOCK, ROW_TILES, kernel_constants, residual_norm_kernel, row_grid, row_kernel, stacked_arguments,
        takes_row_kernel, weight_offsets,
    )
    from .weight_quantization import INT4_GROUP_SIZE, dequantize, quantize_int4, quantize_int8
except ImportError:
    from decode_kernels import (
        define_op, fuses_residual_norm, launch_residual_norm, one_row, residual_norm, residual_norm_by_last,
    )
    from quantized_prompt_kernel import bucket as prompt_bucket
    from quantized_prompt_kernel import fitting_configs as prompt_fitting_configs
    from quantized_prompt_kernel import launch as launch_prompt_kernel
    from quantized_prompt_kernel import most_splits, prompt_kernel, takes_prompt_kernel
    from quantized_prompt_kernel import tile_configs as prompt_tile_configs
    from quantized_row_kernel import (
        MIN_NORM_BLOCK, ROW_TILES, kernel_constants, residual_norm_kernel, row_grid, row_kernel, stacked_arguments,
        takes_row_kernel, weight_offsets,
    )
    from weight_quantization import INT4_GROUP_SIZE, dequantize, quantize_int4, quantize_int8

ROW_MULTIPLE = 64  # every stacked weight's output size must be a multiple of this (the BLOCK_N every path can take)
KERNEL_DTYPES = (torch.bfloat16, torch.float16)
# The 16-bit pairs' MAGIC (128 in bf16, 1024 in f16: its last mantissa bit is worth 1) and one, by kind.
PAIR_MAGIC = {"bf16": (0x4300, 0x3F80), "f16": (0x6400, 0x3C00)}
MIN_BLOCK_K = 256  # int4 groups must divide it: several rows then have configurations whose steps hold whole groups
# One row: the block sizes (rows x inputs a step, warps) and conversions autotune chooses among: the two fastest for
# each kind and shape of the 7B model in profile_decode.py's wider sweep, and 16 x 512 for int4's products in pairs
# (benchmarks/RESULTS.md). int4 takes those without bit casts only (its one-row products convert no codes to float32).
ROW_CONFIGS = [{"BLOCK_M": 1, "BLOCK_N": n, "BLOCK_K": k, "BIT_CAST": bit_cast, "num_warps": warps}
               for n, k, warps, bit_cast in ((8, 1024, 8, True), (8, 1024, 8, False), (8, 512, 4, False),
                                             (8, 1024, 4, True), (4, 1024, 4, True), (4, 512, 2, True),
                                             (4, 1024, 4, False), (16, 512, 4, False))]

# Several rows: the tiles autotune chooses among, by kind and bucket of rows (`row_bucket`), each (weights first,
# BLOCK_M, BLOCK_N, BLOCK_K, pipeline stages, programs sharing a tile's inputs): the fastest of sweeps at 8, 32 and 96
# rows (benchmarks/RESULTS.md, "Several rows"; int8 on an H100, int4 on an H200). Prompts 128 rows a tile (each weight
# tile dequantized once) or 64 for narrow weights (down), the widest tile also with two stages (gate|up +15% on an
# H200). Up to 128 rows tiles may also split their steps among 4 programs (SPLIT_K), which autotune takes for
# weights of few tiles (o and down, 4096 outputs: 1.2-2x faster on an H200); the launch then holds 4 x rows x outputs
# float32 partial sums (45 MB for a 7B gate|up at 128 rows), so longer prompts, which have tiles enough, take none.
PROMPT_TILES = {4: [(False, 128, 128, 128, 3, 1), (False, 128, 128, 128, 2, 1), (True, 64, 128, 128, 3, 1),
                    (False, 64, 64, 256, 3, 1), (True, 128, 64, 256, 3, 1), (True, 128, 64, 64, 3, 1)],
                8: [(True, 128, 64, 128, 3, 1), (True, 64, 64, 256, 3, 1), (True, 64, 64, 128, 3, 1)]}
ROWS_TILES = {
    (4, 16): [(True, 16, 64, 256, 3, 1), (True, 16, 64, 256, 3, 4), (True, 16, 128, 128, 3, 4)],
    (4, 32): [(True, 32, 64, 256, 3, 1), (True, 32, 128, 128, 3, 1), (True, 32, 128, 256, 3, 1),
              (True, 32, 64, 256, 3, 4), (True, 32, 128, 128, 3, 4)],
    (4, 64): [(False, 64, 128, 128, 3, 1), (True, 64, 128, 128, 3, 1), (False, 64, 64, 256, 3, 1),
              (True, 64, 64, 256, 3, 1)],
    (4, 128): PROMPT_TILES[4] + [(False, 128, 128, 128, 3, 4)],
    (4, 256): PROMPT_TILES[4],
    (8, 16): [(False, 16, 64, 128, 3, 1), (True, 16, 32, 256, 3, 1), (True, 16, 64, 128, 3, 1),
              (False, 16, 64, 128, 3, 4)],
    (8, 32): [(False, 32, 64, 128, 3, 1), (True, 32, 64, 128, 3, 1), (True, 32, 64, 256, 3, 1),
              (False, 32, 64, 128, 3, 4)],
    (8, 64): [(False, 64, 64, 128, 3, 1), (True, 64, 64, 128, 3, 1), (True, 64, 64, 256, 3, 1)],
    (8, 128): PROMPT_TILES[8] + [(True, 128, 64, 128, 3, 4), (False, 128, 128, 64, 3, 4)],
    (8, 256): PROMPT_TILES[8],
}
# Long prompts: from this many rows a product dequantizes its weights into a copy and multiplies on cuBLAS, whose
# tiles then outrun the kernels' by more than the copy costs (int8 and int4, every 7B shape on an H200: 1.1-1.8x at
# 288 rows, where the kernels' 128-row tiles become three; 1.6-2.4x at 4,096; at 256 rows the kernels still win for
# q|k|v; benchmarks/RESULTS.md, "Long prompts" and "dp4a"); DEQUANTIZE_BLOCK: the copy's (rows, inputs) a program,
# a whole number of int4 groups.
DEQUANTIZED_ROWS = 288
DEQUANTIZE_BLOCK = (32, MIN_BLOCK_K)
TILE_FIELDS = ("WEIGHTS_FIRST", "BLOCK_M", "BLOCK_N", "BLOCK_K", "num_stages", "SPLIT_K")
SUM_BLOCK = 1024  # outputs a program of the kernel that adds split tiles' partial sums
ROWS_CONFIGS = [{**dict(zip(TILE_FIELDS, tile)), "num_warps": 4}
                for tile in sorted({tile for tiles in ROWS_TILES.values() for tile in tiles})]


class PackedWeight(NamedTuple):
    """A quantized projection as the fast decoder holds it: int8 `qweight` (N, K) with `scale` (1, N), or int32
    `qweight` (N, K / 8) with `scale` and `offset` (K / group, N)."""

    qweight: torch.Tensor
    scale: torch.Tensor
    offset: torch.Tensor | None


def packed_weight(weight: torch.Tensor, bits: int, *, group_size: int = INT4_GROUP_SIZE) -> PackedWeight:
    """`weight` stored as weight_quantization.py stores it (int8 rows, or int4 groups of `group_size`), as the kernels
    take it (tests, benchmarks; the fast decoder reads QuantizedLinear's buffers)."""
    stored = quantize_int8(weight) if bits == 8 else quantize_int4(weight, group_size)
    return PackedWeight(stored["qweight"], stored["scale"], stored.get("offset"))


def weight_bits(qweight: torch.Tensor) -> int:
    return 8 if qweight.dtype == torch.int8 else 4


def input_width(weight: PackedWeight) -> int:
    """The weight's inputs: a code a column for int8, eight a word for int4."""
    return weight.qweight.shape[1] * (1 if weight_bits(weight.qweight) == 8 else 8)


def group_size(weight: PackedWeight) -> int:
    """Inputs per scale: the row for int8, the group for int4."""
    return input_width(weight) // weight.scale.shape[0]


def row_bucket(rows: int) -> int:
    """Several rows are tuned by bucket: up to 16 (batched decoding), 32, 64, 128 (short prompts), and more (256)."""
    return prompt_bucket(rows, (16, 32, 64, 128, 256))


def tile_of(config: dict) -> tuple:
    """A several-row configuration's tile, as ROWS_TILES lists it."""
    return tuple(config[name] for name in TILE_FIELDS)


def tile_fits(config: dict, arguments: dict) -> bool:
    """Whether a several-row configuration is a candidate for this launch: one of its kind and bucket's tiles
    (ROWS_TILES), each int4 step holding whole groups, and no block of output columns straddling two of the stacked
    weights (sizes n0, n01 - n0, N - n01)."""
    tiles = ROWS_TILES[(4 if arguments["INT4"] else 8, arguments["ROW_BUCKET"])]
    return (tile_of(config) in tiles
            and (not arguments["INT4"] or config["BLOCK_K"] % arguments["GROUP"] == 0)
            and all(size % config["BLOCK_N"] == 0 for size in (arguments["n0"], arguments["n01"], arguments["N"])))


def _weight_pairs_ptx(kind: str, *, words: tuple[str, str], scale: str, offset: str, use) -> list[str]:
    """PTX making the 16 weights of two neighbouring int32 words of int4 codes (16 neighbouring inputs, as
    weight_quantization.py packs them) in `kind` (bf16 or f16) pairs, pair p (inputs 2p and 2p + 1) in register `w`,
    then the lines `use(p)` gives. A shift and one and-or place the codes of a word's pair n (bits 4n.. and 16 + 4n..)
    in the low mantissa bits of both halves of MAGIC (128 in bf16, 1024 in f16: its last bit is worth 1), a
    multiply-add takes MAGIC away exactly, another makes the weights with one rounding as dequantize() does. `scale`
    and `offset`: 16-bit operands, the group's."""
    lines = [*_pair_constants(kind), f"mov.b32 s2, {{{scale}, {scale}}};", f"mov.b32 o2, {{{offset}, {offset}}};"]
    for index, word in enumerate(words):
        for n in range(4):
            if n:
                lines.append(f"shr.u32 t, {word}, {4 * n};")
            lines += [*_pair_of_codes(kind, "t" if n else word, weights="w", scales="s2", offsets="o2"),
                      *use(4 * index + n)]
    return lines


def _both_halves(value: int) -> str:
    """A 16-bit value in both halves of a 32-bit register."""
    return f"0x{value:04X}{value:04X}"


def _pair_constants(kind: str) -> list[str]:
    """PTX setting `one` and `bias` (-MAGIC) in both halves for `_pair_of_codes`."""
    magic, one = PAIR_MAGIC[kind]
    return [f"mov.b32 one, {_both_halves(one)};", f"mov.b32 bias, {_both_halves(magic | 0x8000)};"]


def _pair_of_codes(kind: str, shifted: str, *, weights: str, scales: str, offsets: str) -> list[str]:
    """PTX making register `weights` the pair of weights whose codes are bits 0.. and 16.. of `shifted`: an and-or
    places them in MAGIC's low mantissa bits, a multiply-add takes MAGIC away exactly, another applies the scales and
    offsets (both halves of `scales`, `offsets`) with one rounding."""
    return [f"lop3.b32 {weights}, {shifted}, 0x000F000F, {_both_halves(PAIR_MAGIC[kind][0])}, 0xEA;",  # (a & b) | c
            f"fma.rn.{kind}x2 {weights}, {weights}, one, bias;",  # the two codes
            f"fma.rn.{kind}x2 {weights}, {weights}, {scales}, {offsets};"]  # the two weights


def pair_dot_asm(kind: str) -> str:
    """Inline PTX for two neighbouring int32 words of int4 codes, two weights an instruction in `kind` (bf16 or f16)
    pairs. $0 = sum((code * scale + offset) * input) over the words' 16 inputs, float32; $1, $2 the words; $3..$6 the
    inputs, four in each 64-bit operand; $7, $8 the group's scale and offset. The weights as `_weight_pairs_ptx` makes
    them; a third multiply-add multiplies the pair of inputs in. Each word's four pairs are summed in one pair, then
    in float32. Compiled for sm_90 the loop issues about 4 instructions a weight where a float32 loop issued 8.2 (the
    one-row int4 kernels were bound by issuing them: Nsight Compute, benchmarks/RESULTS.md)."""

    def dot(pair: int) -> list[str]:
        accumulator = "lo4" if pair < 4 else "hi4"
        return [f"fma.rn.{kind}x2 {accumulator}, w, x{pair}, {accumulator if pair % 4 else 'zero'};"]

    lines = ["mov.b32 zero, 0x80008000;",  # -0.0 in both halves: each chain's first addend
             *(f"mov.b64 {{x{2 * index}, x{2 * index + 1}}}, ${3 + index};" for index in range(4)),
             *_weight_pairs_ptx(kind, words=("$1", "$2"), scale="$7", offset="$8", use=dot)]
    for index, accumulator in enumerate(("lo4", "hi4")):
        lines += [f"mov.b32 {{l, h}}, {accumulator};", f"cvt.f32.{kind} a, l;", f"cvt.f32.{kind} c, h;",
                  "add.f32 a, a, c;", "add.f32 $0, $0, a;" if index else "mov.f32 $0, a;"]
    registers = ".reg .b32 t, w, lo4, hi4, one, bias, zero, s2, o2, x0, x1, x2, x3, x4, x5, x6, x7;"
    return "\n".join(["{", registers, ".reg .b16 l, h;", ".reg .f32 a, c;", *lines, "}"])


def fragment_pair_asm(kind: str) -> str:
    """Inline PTX for quantized_prompt_kernel.py (pack=2): the pair of weights $0 from bits $3.. and 16 + $3.. of
    word $1 ($2 and $4: the pair's second copies of the word and the shift), $5 and $6 the group's scale and offset in
    both halves, as `_weight_pairs_ptx` makes them."""
    lines = [*_pair_constants(kind), "shr.u32 t, $1, $3;", *_pair_of_codes(kind, "t", weights="$0", scales="$5",
                                                                         offsets="$6")]
    return "\n".join(["{", ".reg .b32 t, one, bias;", *lines, "}"])


def pair_weights_asm(kind: str) -> str:
    """Inline PTX for the several-row products' int4 tiles: the 16 weights of two neighbouring int32 words ($8, $9)
    as `_weight_pairs_ptx` makes them, $p (p = 0..7) holding the pair of inputs 2p and 2p + 1; $10, $11 the group's
    scale and offset. Two instructions a weight where converting each code to float32 took about five."""
    lines = _weight_pairs_ptx(kind, words=("$8", "$9"), scale="$10", offset="$11",
                              use=lambda pair: [f"mov.b32 ${pair}, w;"])
    return "\n".join(["{", ".reg .b32 t, w, one, bias, s2, o2;", *lines, "}"])


FRAGMENT_PAIR_ASM = {torch.bfloat16: fragment_pair_asm("bf16"), torch.float16: fragment_pair_asm("f16")}

if triton is not None:

    # Triton's interpreter (CPU tests) runs no PTX: the int4 one-row products then take a float32 loop.
    INTERPRETED = tl.constexpr(os.environ.get("TRITON_INTERPRET", "0") == "1")
    BF16_PAIR_DOT_ASM = tl.constexpr(pair_dot_asm("bf16"))
    F16_PAIR_DOT_ASM = tl.constexpr(pair_dot_asm("f16"))
    PAIR_DOT_CONSTRAINTS = tl.constexpr("=r,r,r,l,l,l,l,h,h")
    BF16_PAIR_WEIGHTS_ASM = tl.constexpr(pair_weights_asm("bf16"))
    F16_PAIR_WEIGHTS_ASM = tl.constexpr(pair_weights_asm("f16"))
    PAIR_WEIGHTS_CONSTRAINTS = tl.constexpr("=r," * 8 + "r,r,h,h")

    @triton.jit
    def _int8_to_float(codes, BIT_CAST: tl.constexpr):
        """int8 codes (-127..127) as float32: by conversion instructions, or (BIT_CAST) by writing code + 128 into the
        mantissa of 2^23 and subtracting 2^23 + 128, integer and float operations that run at the full rate where the
        GPU converts integers at a fraction of it."""
        if BIT_CAST:
            return ((codes.to(tl.int32) + 128) | 0x4B000000).to(tl.float32, bitcast=True) - 8388736.0
        return codes.to(tl.float32)

    @triton.jit
    def _int4_codes(words, NIBBLE: tl.constexpr):
        """The codes held in bits 4 NIBBLE..4 NIBBLE + 3 of int32 `words` (each word's input `_nibble_input(NIBBLE)`)
        as float32 (Triton's interpreter; the GPU makes them by inline PTX)."""
        return ((words >> 4 * NIBBLE) & 0xF).to(tl.float32)

    @triton.jit
    def _nibble_input(NIBBLE: tl.constexpr):
        """Which of its word's eight inputs bits 4 NIBBLE..4 NIBBLE + 3 hold (weight_quantization.py's layout)."""
        return 2 * (NIBBLE % 4) + NIBBLE // 4

    @triton.jit
    def _group_scales(s_ptr, f_ptr, rows, rows_in_weight, groups, inside):
        """Each of `rows`' scale and offset for int4 `groups` (which exist where `inside`), (rows, groups) float32,
        read from their group-major storage."""
        where = groups[None, :] * rows_in_weight + rows[:, None]
        scale = tl.load(s_ptr + where, mask=inside[None, :], other=0).to(tl.float32)
        offset = tl.load(f_ptr + where, mask=inside[None, :], other=0).to(tl.float32)
        return scale, offset

    @triton.jit
    def _step_word_pairs(q_ptr, s_ptr, f_ptr, rows, rows_in_weight, k0, K: tl.constexpr, GROUP: tl.constexpr,
                         BLOCK_K: tl.constexpr, EVICTION: tl.constexpr):
        """The int4 codes of `rows` for the step's inputs k0..k0 + BLOCK_K, two neighbouring words a 64-bit load:
        `packed` (rows, groups, word pairs), zero past the row's end; each word pair's index in the row (`pair`, its 16
        inputs start at input 16 * pair); whether its group exists (`inside`, (groups,)); and the groups' scale and
        offset, (rows, groups, 1). EVICTION: the codes' load's eviction policy."""
        HALF: tl.constexpr = GROUP // 16  # word pairs of a group
        groups = k0 // GROUP + tl.arange(0, BLOCK_K // GROUP)
        inside = groups < K // GROUP
        pair = groups[None, :, None] * HALF + tl.arange(0, HALF)[None, None, :]  # (1, groups, word pairs)
        packed = tl.load(q_ptr.to(tl.pointer_type(tl.int64)) + rows[:, None, None] * (K // 16) + pair,
                         mask=inside[None, :, None], other=0, eviction_policy=EVICTION)
        scale, offset = _group_scales(s_ptr, f_ptr, rows, rows_in_weight, groups, inside)
        return packed, pair, inside, scale[:, :, None], offset[:, :, None]

    @triton.jit
    def _interpreted_weight_pair(words, N: tl.constexpr, scale, offset, dtype: tl.constexpr):
        """What pair_weights_asm leaves for the words' pair N (inputs 2N and 2N + 1 of each), computed in float32 and
        rounded to `dtype` (Triton's interpreter)."""
        low = (_int4_codes(words, N) * scale + offset).to(dtype).to(tl.uint16, bitcast=True)
        high = (_int4_codes(words, N + 4) * scale + offset).to(dtype).to(tl.uint16, bitcast=True)
        return low.to(tl.uint32) | (high.to(tl.uint32) << 16)

    @triton.jit
    def _pairs_in_order(p0, p1, p2, p3, p4, p5, p6, p7):
        """The eight tensors joined along three new minor dimensions, pair p at flat index p there (a join adds the
        most minor dimension: the pairs whose lowest index bit differs are joined last)."""
        return tl.join(tl.join(tl.join(p0, p4), tl.join(p2, p6)), tl.join(tl.join(p1, p5), tl.join(p3, p7)))

    @triton.jit
    def _int4_pair_tile(q_ptr, s_ptr, f_ptr, rows, rows_in_weight, k0, dtype: tl.constexpr, K: tl.constexpr,
                        GROUP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        """The weights of `rows` for the step's inputs k0..k0 + BLOCK_K in `dtype`, (BLOCK_N, BLOCK_K), as
        dequantize() gives them, two words (one 64-bit load) at a time by inline PTX (`pair_weights_asm`; Triton's
        interpreter computes the same in float32)."""
        packed, _, _, scale, offset = _step_word_pairs(q_ptr, s_ptr, f_ptr, rows, rows_in_weight, k0, K, GROUP, BLOCK_K,
                                                       "")
        even, odd = packed.to(tl.int32), (packed >> 32).to(tl.int32)
        if INTERPRETED:
            pairs = _pairs_in_order(
                _interpreted_weight_pair(even, 0, scale, offset, dtype),
                _interpreted_weight_pair(even, 1, scale, offset, dtype),
                _interpreted_weight_pair(even, 2, scale, offset, dtype),
                _interpreted_weight_pair(even, 3, scale, offset, dtype),
                _interpreted_weight_pair(odd, 0, scale, offset, dtype),
                _interpreted_weight_pair(odd, 1, scale, offset, dtype),
                _interpreted_weight_pair(odd, 2, scale, offset, dtype),
                _interpreted_weight_pair(odd, 3, scale, offset, dtype))
        else:
            asm: tl.constexpr = BF16_PAIR_WEIGHTS_ASM if dtype == tl.bfloat16 else F16_PAIR_WEIGHTS_ASM
            p0, p1, p2, p3, p4, p5, p6, p7 = tl.inline_asm_elementwise(
                asm, PAIR_WEIGHTS_CONSTRAINTS,
                [even, odd, scale.to(dtype).to(tl.uint16, bitcast=True), offset.to(dtype).to(tl.uint16, bitcast=True)],
                dtype=(tl.uint32, tl.uint32, tl.uint32, tl.uint32, tl.uint32, tl.uint32, tl.uint32, tl.uint32),
                is_pure=True, pack=1)
            pairs = _pairs_in_order(p0, p1, p2, p3, p4, p5, p6, p7)
        low = (pairs & 0xFFFF).to(tl.uint16).to(dtype, bitcast=True)
        high = (pairs >> 16).to(tl.uint16).to(dtype, bitcast=True)
        return tl.reshape(tl.join(low, high), (BLOCK_N, BLOCK_K))

    @triton.jit
    def _int4_word_pair_dots(pairs, pair_inputs, inside, scale, offset):
        """For each pair of neighbouring int32 words of 8 int4 codes, loaded as one int64 (`pairs`, whose 16 inputs
        start at `pair_inputs`, where `inside`), the sum over its 16 weights of (code * scale + offset) * input,
        float32 (scale and offset as _group_scales gives them). On a GPU in pairs of the input's 16-bit type by inline
        PTX (`pair_dot_asm`), each weight rounded to that type (the weight dequantize() gives); under Triton's
        interpreter, which runs no PTX (nor rounds to bfloat16 as a GPU does), one at a time in float32."""
        even, odd = pairs.to(tl.int32), (pairs >> 32).to(tl.int32)  # inputs 0..7 and 8..15
        if INTERPRETED:
            dots = tl.zeros(pairs.shape, dtype=tl.float32)
            for nibble in tl.static_range(8):
                x_even = tl.load(pair_inputs + _nibble_input(nibble), mask=inside, other=0).to(tl.float32)
                x_odd = tl.load(pair_inputs + 8 + _nibble_input(nibble), mask=inside, other=0).to(tl.float32)
                dots += (_int4_codes(even, nibble) * scale + offset) * x_even
                dots += (_int4_codes(odd, nibble) * scale + offset) * x_odd
            return dots
        dtype = pair_inputs.dtype.element_ty
        scale, offset = scale.to(dtype), offset.to(dtype)
        x = pair_inputs.to(tl.pointer_type(tl.int64))  # four inputs a load
        arguments = [even, odd, tl.load(x, mask=inside, other=0), tl.load(x + 1, mask=inside, other=0),
                     tl.load(x + 2, mask=inside, other=0), tl.load(x + 3, mask=inside, other=0),
                     scale.to(tl.uint16, bitcast=True), offset.to(tl.uint16, bitcast=True)]
        asm: tl.constexpr = BF16_PAIR_DOT_ASM if dtype == tl.bfloat16 else F16_PAIR_DOT_ASM
        return tl.inline_asm_elementwise(asm, PAIR_DOT_CONSTRAINTS, arguments, dtype=tl.float32, is_pure=True, pack=1)

    @triton.jit
    def _row_dots(q_ptr, s_ptr, f_ptr, x_ptr, rows, rows_in_weight, K: tl.constexpr, GROUP: tl.constexpr,
                  INT4: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BIT_CAST: tl.constexpr):
        """One input row (x, K) times the dequantized weight `rows`, float32 (BLOCK_N,), on the CUDA cores: BLOCK_K
        inputs a step, int4 two words (16 weights) at a time in 16-bit pairs (`_int4_word_pair_dots`), int8 in
        float32 (BIT_CAST: how its codes become floats)."""
        if INT4:
            accumulator = tl.zeros((BLOCK_N, BLOCK_K // GROUP, GROUP // 16), dtype=tl.float32)
            for k0 in range(0, K, BLOCK_K):
                # each weight is read once: evict_first keeps L1 for the input, scales and offsets (+8-20% on H100)
                packed, pair, inside, scale, offset = _step_word_pairs(q_ptr, s_ptr, f_ptr, rows, rows_in_weight, k0,
                                                                       K, GROUP, BLOCK_K, "evict_first")
                accumulator += _int4_word_pair_dots(packed, x_ptr + 16 * pair, inside[None, :, None], scale, offset)
            return tl.sum(tl.sum(accumulator, axis=2), axis=1)
        else:
            accumulator = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
            for k0 in range(0, K, BLOCK_K):
                inputs = k0 + tl.arange(0, BLOCK_K)
                inside = inputs < K
                codes = tl.load(q_ptr + rows[:, None] * K + inputs[None, :], mask=inside[None, :], other=0,
                                eviction_policy="evict_first")
                x = tl.load(x_ptr + inputs, mask=inside, other=0).to(tl.float32)
                accumulator += _int8_to_float(codes, BIT_CAST) * x[None, :]
            return tl.sum(accumulator, axis=1) * tl.load(s_ptr + rows).to(tl.float32)

    @triton.jit
    def _tile_product(accumulator, weights, x_ptr, m, inputs, inside, M, K: tl.constexpr, WEIGHTS_FIRST: tl.constexpr):
        """accumulator + x[m, inputs] @ weights.T, or (WEIGHTS_FIRST, the accumulator transposed) weights @
        x[m, inputs].T, on the tensor cores in the input's dtype; `inside`: which inputs exist."""
        if WEIGHTS_FIRST:
            x = tl.load(x_ptr + m[None, :] * K + inputs[:, None], mask=(m[None, :] < M) & inside[:, None], other=0)
            accumulator = tl.dot(weights.to(x.dtype), x, accumulator)
        else:
            x = tl.load(x_ptr + m[:, None] * K + inputs[None, :], mask=(m[:, None] < M) & inside[None, :], other=0)
            accumulator = tl.dot(x, tl.trans(weights.to(x.dtype)), accumulator)
        return accumulator

    @triton.jit
    def _quantized_kernel(x_ptr, out_ptr, partials_ptr, q0, q1, q2, s0, s1, s2, f0, f1, f2, n0, n01, M, N,
                          K: tl.constexpr, GROUP: tl.constexpr, INT4: tl.constexpr, BLOCK_M: tl.constexpr,
                          BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BIT_CAST: tl.constexpr = False,
                          WEIGHTS_FIRST: tl.constexpr = False, ROW_BUCKET: tl.constexpr = 0,
                          GATED: tl.constexpr = False, SPLIT_K: tl.constexpr = 1):
        """out[:, block] = x @ dequantized(w).T for the weight (0, 1 or 2) holding this program's BLOCK_N output
        columns; row blocks never straddle two weights. `f*` (offsets) are only read for int4. One row: BLOCK_K
        inputs a step on the CUDA cores (BIT_CAST: how int8 codes become floats, `_int8_to_float`). Several rows: a
        tile of BLOCK_K inputs a step on the tensor cores, as x @ w.T or (WEIGHTS_FIRST) w @ x.T; with SPLIT_K > 1
        the tile's steps are shared among SPLIT_K programs (grid axis 2), each writing its float32 partial sums to
        its slice of partials_ptr (SPLIT_K, M, N) for `_split_sum_kernel` to add. ROW_BUCKET: only autotune's key.
        GATED (one row): out = silu(x @ w0.T) * (x @ w1.T), each product rounded to out's dtype as the unfused ops
        do."""
        start = tl.program_id(0).to(tl.int64) * BLOCK_N
        if start < n0:
            q_ptr, s_ptr, f_ptr, first, rows_in_weight = q0, s0, f0, start, n0
        elif start < n01:
            q_ptr, s_ptr, f_ptr, first, rows_in_weight = q1, s1, f1, start - n0, n01 - n0
        else:
            q_ptr, s_ptr, f_ptr, first, rows_in_weight = q2, s2, f2, start - n01, N - n01
        rows = first + tl.arange(0, BLOCK_N)  # weight rows
        columns = start + tl.arange(0, BLOCK_N)  # output columns
        m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
        if BLOCK_M == 1:
            dots = _row_dots(q_ptr, s_ptr, f_ptr, x_ptr, rows, rows_in_weight, K, GROUP, INT4, BLOCK_N, BLOCK_K,
                             BIT_CAST)
            if GATED:  # this program's rows of the gate (weight 0) and the same rows of up (weight 1)
                dtype = out_ptr.dtype.element_ty  # each step rounded to it; the product of two such is exact in float32
                gate = dots.to(dtype).to(tl.float32)
                up = _row_dots(q1, s1, f1, x_ptr, rows, rows_in_weight, K, GROUP, INT4, BLOCK_N, BLOCK_K, BIT_CAST)
                silu = (gate / (1.0 + tl.exp(-gate))).to(dtype).to(tl.float32)
                tl.store(out_ptr + columns, (silu * up.to(dtype).to(tl.float32)).to(dtype))
            else:
                tl.store(out_ptr + columns, dots.to(out_ptr.dtype.element_ty))
        else:
            # Several rows on the tensor cores, as x @ w.T or weights first, w @ x.T (weight rows on the products' M
            # side, which an H100's instructions take 64 wide, the few input rows on the N side).
            if WEIGHTS_FIRST:
                accumulator = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
            else:
                accumulator = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            if SPLIT_K == 1:
                first_input, end_input = 0, K
            else:  # this program's share of the steps; its partial sums go to slice `split` of partials_ptr
                STEPS: tl.constexpr = (K + BLOCK_K - 1) // BLOCK_K
                SPLIT_STEPS: tl.constexpr = (STEPS + SPLIT_K - 1) // SPLIT_K
                split = tl.program_id(2)
                first_input = split * SPLIT_STEPS * BLOCK_K
                end_input = tl.minimum((split + 1) * SPLIT_STEPS, STEPS) * BLOCK_K
                out_ptr = partials_ptr + split.to(tl.int64) * M * N
            for k0 in range(first_input, end_input, BLOCK_K):
                inputs = k0 + tl.arange(0, BLOCK_K)
                if INT4:
                    weights = _int4_pair_tile(q_ptr, s_ptr, f_ptr, rows, rows_in_weight, k0, x_ptr.dtype.element_ty,
                                              K, GROUP, BLOCK_N, BLOCK_K)
                else:  # |codes| <= 127: exact in bf16; the row's scale applies to the sums
                    weights = _int8_to_float(tl.load(q_ptr + rows[:, None] * K + inputs[None, :],
                                                     mask=inputs[None, :] < K, other=0), False)
                accumulator = _tile_product(accumulator, weights, x_ptr, m, inputs, inputs < K, M, K, WEIGHTS_FIRST)
            row_scale = tl.load(s_ptr + rows).to(tl.float32) if not INT4 else tl.full((BLOCK_N,), 1.0, tl.float32)
            if WEIGHTS_FIRST:
                tl.store(out_ptr + m[None, :] * N + columns[:, None],
                         (accumulator * row_scale[:, None]).to(out_ptr.dtype.element_ty), mask=m[None, :] < M)
            else:
                tl.store(out_ptr + m[:, None] * N + columns[None, :],
                         (accumulator * row_scale[None, :]).to(out_ptr.dtype.element_ty), mask=m[:, None] < M)

    @triton.jit
    def _residual_norm_kernel(x_ptr, out_ptr, q_ptr, s_ptr, f_ptr, residual_ptr, norm_ptr, hidden_ptr, normed_ptr,
                              arrivals_ptr, eps, N, K: tl.constexpr, GROUP: tl.constexpr, INT4: tl.constexpr,
                              BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, NORM_BLOCK: tl.constexpr,
                              BIT_CAST: tl.constexpr = False, BLOCK_M: tl.constexpr = 1):
        """One row: out = x @ dequantized(w).T (BLOCK_N outputs a program, as `_quantized_kernel`), then, by the last
        program to finish, hidden = residual + out and normed = its RMSNorm times norm
        (decode_kernels.residual_norm_by_last). BLOCK_M: ROW_CONFIGS' 1, taken and unused."""
        rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
        dots = _row_dots(q_ptr, s_ptr, f_ptr, x_ptr, rows, N, K, GROUP, INT4, BLOCK_N, BLOCK_K, BIT_CAST)
        tl.store(out_ptr + rows, dots.to(out_ptr.dtype.element_ty))
        residual_norm_by_last(out_ptr, residual_ptr, norm_ptr, hidden_ptr, normed_ptr, arrivals_ptr, eps, N,
                              NORM_BLOCK)

    @triton.jit
    def _split_sum_kernel(partials_ptr, out_ptr, size, SPLIT_K: tl.constexpr, BLOCK: tl.constexpr):
        """out = the SPLIT_K float32 partial products (SPLIT_K, size) summed in order, in out's dtype."""
        where = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        inside = where < size
        total = tl.load(partials_ptr + where, mask=inside, other=0)
        for split in tl.static_range(1, SPLIT_K):
            total += tl.load(partials_ptr + split * size + where, mask=inside, other=0)
        tl.store(out_ptr + where, total.to(out_ptr.dtype.element_ty), mask=inside)

    @triton.jit
    def _dequantize_kernel(q_ptr, s_ptr, f_ptr, out_ptr, N, K: tl.constexpr, GROUP: tl.constexpr, INT4: tl.constexpr,
                           BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        """out (N, K) = the weight in out's dtype, a (BLOCK_N, BLOCK_K) tile a program: int4 as the several-row tiles
        make it (`_int4_pair_tile`), int8 as code * scale in float32, rounded once."""
        rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
        k0 = tl.program_id(1) * BLOCK_K
        inputs = k0 + tl.arange(0, BLOCK_K)
        dtype = out_ptr.dtype.element_ty
        if INT4:
            weights = _int4_pair_tile(q_ptr, s_ptr, f_ptr, rows, N, k0, dtype, K, GROUP, BLOCK_N, BLOCK_K)
        else:
            codes = tl.load(q_ptr + rows[:, None] * K + inputs[None, :], eviction_policy="evict_first")
            weights = (codes.to(tl.float32) * tl.load(s_ptr + rows).to(tl.float32)[:, None]).to(dtype)
        tl.store(out_ptr + rows[:, None] * K + inputs[None, :], weights)

    # Timings kept in Triton's cache directory where Triton can (3.4 and later): a later process does not time again.
    AUTOTUNE_CACHE = {"cache_results": True} if "cache_results" in inspect.signature(triton.autotune).parameters else {}

    def _add_partials(arguments: dict, exception: Exception | None = None) -> None:
        """After a several-row launch whose tiles' inputs were split among programs (SPLIT_K > 1): out = the partial
        sums added. Autotune's hook after each timed launch (so that the timings include it), and the launcher's."""
        split = arguments.get("SPLIT_K", 1)
        if split > 1 and exception is None:
            out = arguments["out_ptr"]
            _split_sum_kernel[(triton.cdiv(out.numel(), SUM_BLOCK),)](arguments["partials_ptr"], out, out.numel(),
                                                                     split, SUM_BLOCK)

    def _replayed_timings(kernel_call, quantiles: tuple) -> list[float]:
        """Triton's do_bench (the L2 cache flushed before each run) of `kernel_call` replayed from a CUDA graph, as
        the decoder runs it. Launched from Python, a launch waits for Python's overhead, longer than one row's
        products (6-40 us): their picks varied between processes (int4 o at 0.76 TB/s in one, 1.29 for the best);
        replayed, each pick was within 3% of the fastest in a stream of weights that L2 cannot hold. A split
        tile's two launches (the tile, then its partial sums) run back to back, as they do in the decoder (launched
        from Python, autotune passed over split tiles that replays ran 1.2-2x faster). benchmarks/RESULTS.md."""
        kernel_call()  # compiles outside the capture (and raises there for tiles this GPU cannot run)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            kernel_call()
        return triton.testing.do_bench(graph.replay, quantiles=quantiles)

    # Timings by replays where Triton takes a timing function (3.2 and later).
    REPLAYED = {"do_bench": _replayed_timings} if "do_bench" in inspect.signature(triton.autotune).parameters else {}

    def _autotuned(configs: list[dict], kernel=_quantized_kernel, **options):
        """`kernel` choosing among `configs` (block sizes, num_warps, num_stages: the software pipeline's depth,
        Triton's 3 unless given) by timing, on first use per key: replays (`REPLAYED`) unless `options` give another
        `do_bench`."""
        return triton.autotune(
            [triton.Config({key: value for key, value in config.items() if key not in ("num_warps", "num_stages")},
                           num_warps=config["num_warps"], num_stages=config.get("num_stages", 3))
             for config in configs], **{**REPLAYED, **options}, **AUTOTUNE_CACHE,
        )(kernel)

    # One row: the block sizes (and int8's conversion) are chosen by timing on first use per weight shape.
    ONE_ROW_PRUNING = {"early_config_prune": lambda configs, named, **launch: [
        config for config in configs if not ({**named, **launch}["INT4"] and config.kwargs["BIT_CAST"])]}
    _row_kernel = _autotuned(ROW_CONFIGS, key=["N", "K", "INT4", "GATED"], prune_configs_by=ONE_ROW_PRUNING)
    _residual_norm_row_kernel = _autotuned(ROW_CONFIGS, _residual_norm_kernel, key=["N", "K", "INT4"],
                                           prune_configs_by=ONE_ROW_PRUNING)
    # One row on sm_80 and later (quantized_row_kernel.py, Gluon): its tiles, chosen the same way.
    if row_kernel is not None:
        TILE_CONFIGS = [dict(zip(("R", "C", "WR", "WC"), tile), num_warps=tile[2] * tile[3]) for tile in ROW_TILES]
        _dp4a_row_kernel = _autotuned(TILE_CONFIGS, row_kernel, key=["N", "K", "INT4", "GATED"])
        _dp4a_residual_norm_kernel = _autotuned(TILE_CONFIGS, residual_norm_kernel, key=["N", "K", "INT4"])
    # Several rows of int4 (quantized_prompt_kernel.py, Gluon): its tiles, chosen the same way.
    if prompt_kernel is not None:
        _prompt_tiles_kernel = _autotuned(
            prompt_tile_configs(), prompt_kernel, key=["N", "n0", "n01", "K", "ROW_BUCKET"],
            post_hook=_add_partials, prune_configs_by={"early_config_prune": lambda configs, named, **launch: (
                prompt_fitting_configs(named["x_ptr"], configs, {**named, **launch}["K"]))})
    # Several rows: tiles chosen by timing per weight shape and bucket of rows, among the bucket's that fit.
    _rows_kernel = _autotuned(
        ROWS_CONFIGS, key=["N", "n0", "n01", "K", "GROUP", "INT4", "ROW_BUCKET"], post_hook=_add_partials,
        prune_configs_by={"early_config_prune": lambda configs, named, **launch: [
            config for config in configs
            if tile_fits({**config.kwargs, "num_stages": config.num_stages}, {**named, **launch})]})


def kernel_config(rows: int, bits: int) -> dict:
    """A configuration that works for these rows (tests, tuning); CUDA launches time their own."""
    if rows == 1:
        return {"BLOCK_M": 1, "BLOCK_N": 4, "BLOCK_K": 512, "num_warps": 4}
    return {"BLOCK_M": min(row_bucket(rows), 64), "BLOCK_N": 64, "BLOCK_K": MIN_BLOCK_K if bits == 4 else 128,
            "num_warps": 4}


def _most_splits(rows: int, bits: int, config: dict | None) -> int:
    """Into how many programs a launch may split a tile's steps: the float32 partial sums it needs room for."""
    if config is not None:
        return config.get("SPLIT_K", 1)
    return 1 if rows == 1 else max(tile[-1] for tile in ROWS_TILES[(bits, row_bucket(rows))])


def _aligned(x: torch.Tensor) -> torch.Tensor:
    """`x`, copied if its address is not 16-byte aligned: the kernels load several inputs at once (8-byte words,
    16-byte rows of int4 codes)."""
    return x.clone() if x.data_ptr() % 16 else x


def launch_quantized_kernel(x: torch.Tensor, weights: list[PackedWeight], config: dict | None = None, *,
                            gated: bool = False) -> torch.Tensor:
    """Runs the kernel (x: (M, K), contiguous). `config`: block sizes (tests, tuning); by default they are tuned by
    timing, per weight shape for one row and per shape and bucket of rows for several (int4 over several rows:
    quantized_prompt_kernel.py's tiles where it takes them). `gated` (one row, weights [gate, up] of one shape):
    silu(x @ gate.T) * (x @ up.T) instead of the products side by side."""
    bits, group = weight_bits(weights[0].qweight), group_size(weights[0])
    sizes = [weight.qweight.shape[0] for weight in weights]
    outputs = sizes[0] if gated else sum(sizes)
    x = _aligned(x)
    rows = x.shape[0]
    out = x.new_empty(rows, outputs)
    gluon_tiles = config is None and takes_prompt_kernel(x, bits=bits, group=group)
    bucket = prompt_bucket(rows)
    splits = most_splits(bucket) if gluon_tiles else _most_splits(rows, bits, config)
    partials = out if splits == 1 else out.new_empty(splits, rows, outputs, dtype=torch.float32)
    if gluon_tiles:
        launch_prompt_kernel(_prompt_tiles_kernel, x, weights, pair_asm=FRAGMENT_PAIR_ASM[x.dtype], out=out,
                             partials=partials, ROW_BUCKET=bucket)
        _add_partials({"SPLIT_K": _prompt_tiles_kernel.best_config.kwargs["SPLIT_K"], "out_ptr": out,
                       "partials_ptr": partials})
        return out
    stacked = stacked_arguments(weights)
    arguments = (x, out, partials, *stacked, rows, sum(sizes), x.shape[1], group, bits == 4)
    if gated:
        assert rows == 1 and len(weights) == 2 and sizes[0] == sizes[1], "gated: one row, gate and up"
    if config is None and rows == 1 and takes_row_kernel(x, bits=bits):
        _dp4a_row_kernel[row_grid(outputs)](x, out, *stacked, sum(sizes), x.shape[1], group, bits == 4,
                                            **kernel_constants(x.dtype, bits), GATED=gated)
        return out
    if config is None and rows == 1:
        _row_kernel[lambda meta: (outputs // meta["BLOCK_N"], 1)](*arguments, GATED=gated)
        return out
    if config is None:
        _rows_kernel[lambda meta: (outputs // meta["BLOCK_N"], triton.cdiv(rows, meta["BLOCK_M"]), meta["SPLIT_K"])](
            *arguments, ROW_BUCKET=row_bucket(rows))
        split = _rows_kernel.best_config.kwargs["SPLIT_K"]
    else:
        split = splits  # the configuration's own
        _quantized_kernel[(outputs // config["BLOCK_N"], triton.cdiv(rows, config["BLOCK_M"]), split)](
            *arguments, **config, GATED=gated)
    _add_partials({"SPLIT_K": split, "out_ptr": out, "partials_ptr": partials})
    return out


def dequantized_weights(weights: list[PackedWeight], dtype: torch.dtype) -> torch.Tensor:
    """The stacked weights dequantized into one (N, K) tensor of `dtype`, one launch a weight (on CUDA; Triton's
    interpreter on the CPU): dequantize()'s weights where `dtype` is the scales'."""
    rows, inputs = [weight.qweight.shape[0] for weight in weights], input_width(weights[0])
    stacked = weights[0].scale.new_empty(sum(rows), inputs, dtype=dtype)
    for weight, part in zip(weights, stacked.split(rows)):
        _dequantize_kernel[(len(part) // DEQUANTIZE_BLOCK[0], inputs // DEQUANTIZE_BLOCK[1])](
            weight.qweight, weight.scale, weight_offsets(weight), part, len(part), inputs, group_size(weight),
            weight_bits(weight.qweight) == 4, *DEQUANTIZE_BLOCK)
    return stacked


def dequantized_product(x: torch.Tensor, weights: list[PackedWeight]) -> torch.Tensor:
    """x (M, K) @ the stacked weights' transpose, by dequantizing them into one copy in x's dtype and one cuBLAS
    matmul: for long prompts, where cuBLAS's tiles outrun the kernels' by more than the copy costs
    (DEQUANTIZED_ROWS)."""
    return F.linear(x, dequantized_weights(weights, x.dtype))


def takes_dequantized_product(x: torch.Tensor) -> bool:
    """Whether a product of x's rows goes through `dequantized_product`: DEQUANTIZED_ROWS or more, inputs of whole
    tiles."""
    return x.shape[0] >= DEQUANTIZED_ROWS and x.shape[1] % DEQUANTIZE_BLOCK[1] == 0


def kernel_tiles(weights: list[PackedWeight]) -> bool:
    """Whether the kernel tiles these weights: one format, row counts of whole blocks, int4 groups within a block and
    of whole word pairs (one row's products take two words at a time: groups of 16, 32, 64, ... inputs)."""
    formats = {(weight_bits(weight.qweight), group_size(weight), weight.qweight.shape[1]) for weight in weights}
    group = group_size(weights[0])
    return (
        len(formats) == 1 and (weight_bits(weights[0].qweight) == 8 or (MIN_BLOCK_K % group == 0 and group % 16 == 0))
        and all(weight.qweight.shape[0] % ROW_MULTIPLE == 0 and weight.qweight.is_contiguous() for weight in weights)
    )


def pairs_assemble(dtype: torch.dtype, capability: tuple[int, int]) -> bool:
    """Whether int4's 16-bit pair arithmetic (inline PTX) assembles for this input dtype and GPU: bf16x2 needs sm_80
    or later, f16x2 runs on every GPU Triton supports."""
    return dtype != torch.bfloat16 or capability >= (8, 0)


def _use_kernel(x: torch.Tensor, weights: list[PackedWeight]) -> bool:
    if not (triton is not None and x.is_cuda and x.dtype in KERNEL_DTYPES and kernel_tiles(weights)):
        return False
    capability = torch.cuda.get_device_capability(x.device)
    if weight_bits(weights[0].qweight) == 4 and not pairs_assemble(x.dtype, capability):
        warnings.warn(f"int4 products of bfloat16 inputs need an sm_80 GPU or later; this one (sm_{capability[0]}"
                      f"{capability[1]}) dequantizes each weight for each product instead, which is slow: load the "
                      "model in float16 (--dtype float16) to decode int4 with the kernels", stacklevel=2)
        return False
    return True


def reference_product(x: torch.Tensor, weights: list[PackedWeight]) -> torch.Tensor:
    """Dequantize, then `F.linear`: what the kernel computes, the slow way."""
    products = []
    for weight in weights:
        full = dequantize(qweight=weight.qweight, scale=weight.scale, offset=weight.offset,
                          bits=weight_bits(weight.qweight), group_size=group_size(weight))
        products.append(F.linear(x, full.to(x.dtype)))
    return torch.cat(products, dim=-1)


def _packed(qweights: list[torch.Tensor], scales: list[torch.Tensor],
            offsets: list[torch.Tensor]) -> list[PackedWeight]:
    """The ops' arguments as PackedWeights (`offsets` empty for int8)."""
    return [PackedWeight(qweight, scale, offsets[index] if offsets else None)
            for index, (qweight, scale) in enumerate(zip(qweights, scales))]


def _quantized_stacked_product_shape(x: torch.Tensor, qweights: list[torch.Tensor], scales: list[torch.Tensor],
                                     offsets: list[torch.Tensor]) -> torch.Tensor:
    return x.new_empty(*x.shape[:-1], sum(q.shape[0] for q in qweights))


@define_op("nextgpt::quantized_stacked_product", fake=_quantized_stacked_product_shape)
def quantized_stacked_product(x: torch.Tensor, qweights: list[torch.Tensor], scales: list[torch.Tensor],
                              offsets: list[torch.Tensor]) -> torch.Tensor:
    """`torch.cat([x @ dequantized(w).T for w in weights], -1)` for one to three quantized weights of the same input
    width; `offsets` is empty for int8."""
    weights = _packed(qweights, scales, offsets)
    if not (1 <= len(weights) <= 3 and _use_kernel(x, weights)):
        return reference_product(x, weights)
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    if takes_dequantized_product(flat):
        return dequantized_product(flat, weights).view(*x.shape[:-1], -1)
    return launch_quantized_kernel(flat, weights).view(*x.shape[:-1], -1)


def _quantized_gated_product_shape(x: torch.Tensor, qweights: list[torch.Tensor], scales: list[torch.Tensor],
                                   offsets: list[torch.Tensor]) -> torch.Tensor:
    return x.new_empty(*x.shape[:-1], qweights[0].shape[0])


@define_op("nextgpt::quantized_gated_product", fake=_quantized_gated_product_shape)
def quantized_gated_product(x: torch.Tensor, qweights: list[torch.Tensor], scales: list[torch.Tensor],
                            offsets: list[torch.Tensor]) -> torch.Tensor:
    """`silu(x @ gate.T) * (x @ up.T)` for quantized [gate, up], the input of a Llama MLP's down projection: one
    launch for one row (the SiLU gate applied in the kernel), the stacked product then the gate otherwise."""
    weights = _packed(qweights, scales, offsets)
    if one_row(x) and qweights[0].shape == qweights[1].shape and _use_kernel(x, weights):
        return launch_quantized_kernel(x.reshape(1, -1).contiguous(), weights, gated=True).view(*x.shape[:-1], -1)
    gate, up = quantized_stacked_product(x, qweights, scales, offsets).chunk(2, dim=-1)
    return F.silu(gate) * up


def _op_arguments(weights: list[PackedWeight]) -> tuple[list, list, list]:
    """PackedWeights as the ops take them: codes, scales, and offsets (empty for int8)."""
    offsets = [weight.offset for weight in weights] if weights[0].offset is not None else []
    return [weight.qweight for weight in weights], [weight.scale for weight in weights], offsets


def _quantized_product_residual_norm_shape(x: torch.Tensor, qweight: torch.Tensor, scale: torch.Tensor,
                                           offset: torch.Tensor | None, residual: torch.Tensor, norm: torch.Tensor,
                                           eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    return residual.new_empty(residual.shape), residual.new_empty(residual.shape)


@define_op("nextgpt::quantized_product_residual_norm", fake=_quantized_product_residual_norm_shape)
def quantized_product_residual_norm(x: torch.Tensor, qweight: torch.Tensor, scale: torch.Tensor,
                                    offset: torch.Tensor | None, residual: torch.Tensor, norm: torch.Tensor,
                                    eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """`residual_norm(residual, x @ dequantized(w).T, norm=norm, eps=eps)`: for one row on CUDA in the product's launch
    (its last program adding and normalising); `offset` is None for int8."""
    weight = PackedWeight(qweight, scale, offset)
    if not (fuses_residual_norm(x, residual, norm) and _use_kernel(x, [weight])
            and residual.numel() == len(qweight)):
        product = quantized_stacked_product(x, [qweight], [scale], [] if offset is None else [offset])
        return residual_norm(residual, product, norm=norm, eps=eps)
    bits, x = weight_bits(qweight), _aligned(x)
    common = dict(x=x, weight_arguments=(qweight, scale, weight_offsets(weight)), residual=residual, norm=norm, eps=eps,
                  K=x.shape[-1], GROUP=group_size(weight), INT4=bits == 4)
    if takes_row_kernel(x, bits=bits):
        return launch_residual_norm(_dp4a_residual_norm_kernel, row_grid(len(qweight)),
                                    least_norm_block=MIN_NORM_BLOCK, **common, **kernel_constants(x.dtype, bits))
    return launch_residual_norm(_residual_norm_row_kernel, lambda meta: (len(qweight) // meta["BLOCK_N"],), **common)


def quantized_residual_norm(x: torch.Tensor, weight: PackedWeight, *, residual: torch.Tensor, norm: torch.Tensor,
                            eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The residual add and RMSNorm after a product over a PackedWeight: (hidden, normed)."""
    return quantized_product_residual_norm(x, weight.qweight, weight.scale, weight.offset, residual=residual,
                                           norm=norm, eps=eps)


def quantized_product(x: torch.Tensor, weights: list[PackedWeight]) -> torch.Tensor:
    """The stacked product over PackedWeights."""
    return quantized_stacked_product(x, *_op_arguments(weights))


def quantized_gated(x: torch.Tensor, gate: PackedWeight, up: PackedWeight) -> torch.Tensor:
    """The gated product over PackedWeights."""
    return quantized_gated_product(x, *_op_arguments([gate, up]))


__all__ = ["PackedWeight", "launch_quantized_kernel", "quantized_gated", "quantized_product", "quantized_residual_norm",
           "reference_product"]
