"""Batch-1 products on the integer dot-product instruction (dp4a), the input cut into int8 limbs (2026-11-29,
twenty-sixth session).

The shipped one-row int4 launch is held by issuing instructions (about 4 a weight in 16-bit pairs: RESULTS.md,
"Quantized fast decoding"). Here each chunk of 16 inputs is first written as 16-bit (LIMBS = 2) or 24-bit (3)
integers under the chunk's own power of two, cut into int8 limbs (the top one signed, the others unsigned), bytes
ordered as the int4 word's nibbles come out of one and-mask (`INT4_ORDER`). Then per 16 weights of a row: one 64-bit
load of two code words, three instructions a word for its two nibble words (and; shift, and), and LIMBS x 4 `dp4a`
(four code x limb byte products summed into int32, exactly), the limbs chained by a shift: the exact integer
sum(code x v) of the chunk. One conversion, and sum(w x) = scale * 2^-e * sum(code x v) + offset * sum(x), in float32.
About 1.2-1.5 instructions a weight where the pairs take 4; and no weight is rounded to bf16 (dequantize() rounds it).
int8 weights the same way, four codes a word as stored, LIMBS x 4 dp4a per 16 weights and no unpacking.

The limbs are made once per input row by `_limbs_kernel` (its own launch here, timed alone; in a decoder they would
be written by the launch that makes the input). Timed, microseconds a product (copies of the 7B shapes' weights,
>= 200 MB, replayed from a CUDA graph), a sweep of block sizes against the shipped autotuned launch and bf16 cuBLAS;
relative errors against float64 products over the unrounded (q * s + o) and over dequantize()'s weights.

    python benchmarks/results/dp4a_rows_2026-11-29/dp4a_rows.py check       # CPU: the limbs' layout and sums
    python benchmarks/results/dp4a_rows_2026-11-29/dp4a_rows.py --output dp4a_rows.jsonl    # one GPU
"""
import argparse
import functools
import itertools
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.dirname(BENCHMARKS), BENCHMARKS]

from quantized_decode_kernels import launch_quantized_kernel, packed_weight  # noqa: E402
from weight_quantization import dequantize  # noqa: E402

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = None

SHAPES = {"q|k|v": (12288, 4096), "o": (4096, 4096), "gate|up": (22016, 4096), "down": (4096, 11008)}
CHUNK = 16  # inputs under one power of two: two int4 code words, four int8 code words
# Where each byte of a chunk's four limb words comes from, for int4: word 0 = (w0 & 0x0F0F0F0F), word 1 =
# ((w0 >> 4) & 0x0F0F0F0F), words 2, 3 the same of w1 (weight_quantization.py: bits 4n.. hold input 2n, 16 + 4n..
# input 2n + 1).
INT4_ORDER = (0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15)
INT8_ORDER = tuple(range(CHUNK))
# (BLOCK_N rows, BLOCK_K inputs a step, warps), 1-8 chunks a thread (fewer would leave threads repeating others' work)
CONFIGS = [(n, k, w) for n, k, w in itertools.product((4, 8, 16, 32), (256, 512, 1024), (2, 4, 8))
           if 1 <= n * k // CHUNK / (32 * w) <= 8]
THREE_LIMB_CONFIGS = [(8, 512, 4), (16, 512, 4), (16, 1024, 4), (32, 512, 8)]


def chunk_limbs(x: torch.Tensor, limbs: int, order: tuple, chunk: int = CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """One input row x (K,) as int32 limb words (K / chunk, limbs, chunk / 4), the lowest limb first, bytes in
    `order`, and (K / chunk, 2) float32: each chunk's 2^-e and sum(x). x ~ 2^-e * sum_i limb_i * 256^i per chunk,
    exact for bf16."""
    chunks = x.float().view(-1, chunk)
    largest = chunks.abs().amax(-1, keepdim=True)
    exponent = torch.frexp(largest).exponent  # largest < 2^exponent
    shift = torch.where(largest > 0, 8 * limbs - 1 - exponent, torch.zeros_like(exponent))
    bound = 2 ** (8 * limbs - 1) - 1
    rest = torch.round(torch.ldexp(chunks, shift)).clamp(-bound, bound).to(torch.int32)[:, list(order)]
    pieces = []
    for _ in range(limbs - 1):
        pieces.append(rest & 255)
        rest = rest >> 8
    pieces.append(rest & 255)  # the top limb's two's complement byte
    stacked = torch.stack(pieces, 1).view(-1, limbs, chunk // 4, 4)
    words = (stacked << torch.tensor([0, 8, 16, 24], device=x.device)).sum(-1)
    words = torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)
    meta = torch.cat([torch.ldexp(torch.ones_like(largest), -shift), chunks.sum(-1, keepdim=True)], 1)
    return words, meta


def emulated_product(x: torch.Tensor, weight, limbs: int) -> torch.Tensor:
    """What the kernel computes, in torch (int64 sums of the bytes the dp4a instructions see): (N,) float64."""
    bits = 4 if weight.offset is not None else 8
    words, meta = chunk_limbs(x, limbs, INT4_ORDER if bits == 4 else INT8_ORDER)
    limb_bytes = torch.stack([(words.long() >> s) & 255 for s in (0, 8, 16, 24)], -1)  # (chunks, limbs, 4, 4)
    limb_bytes[:, -1] = torch.where(limb_bytes[:, -1] >= 128, limb_bytes[:, -1] - 256, limb_bytes[:, -1])
    if bits == 4:
        q = weight.qweight.long() & 0xFFFFFFFF
        nibble_words = torch.stack([q & 0x0F0F0F0F, (q >> 4) & 0x0F0F0F0F], -1).view(q.shape[0], -1, 4)
    else:
        q = weight.qweight.view(weight.qweight.shape[0], -1, 4, 4).long()  # bytes, signed
        nibble_words = None
    rows = weight.qweight.shape[0]
    if bits == 4:
        code_bytes = torch.stack([(nibble_words >> s) & 255 for s in (0, 8, 16, 24)], -1)  # (N, chunks, 4, 4)
    else:
        code_bytes = q
    sums = torch.zeros(rows, words.shape[0], dtype=torch.int64)
    for limb in range(limbs):
        sums += torch.einsum("ncwb,cwb->nc", code_bytes, limb_bytes[:, limb]) << (8 * limb)
    power, xsum = meta[:, 0].double(), meta[:, 1].double()
    if bits == 8:
        return (sums.double() * power).sum(-1) * weight.scale.double().view(-1)
    group = x.numel() // weight.scale.shape[0]
    scale = weight.scale.double().T.repeat_interleave(group // CHUNK, 1)
    offset = weight.offset.double().T.repeat_interleave(group // CHUNK, 1)
    return (scale * sums.double() * power + offset * xsum).sum(-1)


def exact_product(x: torch.Tensor, weight, rounded: bool) -> torch.Tensor:
    """float64 x @ w.T over the weights as q * s + o unrounded, or (rounded) as dequantize() gives them."""
    bits = 4 if weight.offset is not None else 8
    double = weight._replace(scale=weight.scale.double(),
                             offset=None if weight.offset is None else weight.offset.double())
    group = x.numel() // weight.scale.shape[0]
    w = dequantize(qweight=weight.qweight, scale=(weight.scale if rounded else double.scale), bits=bits,
                   group_size=group, offset=(weight.offset if rounded else double.offset))
    return w.double() @ x.double()


def dp4a_asm(bits: int, limbs: int) -> str:
    """PTX: $0 = sum over a chunk's 16 inputs of code x v (int32), $1, $2 the chunk's codes (two int64: int4's two
    words in $1 alone, int8's four words in both), then `limbs` x 2 int64 of limb words, the lowest limb first."""
    lines = ["mov.b64 {e0, e1}, $1;", "mov.b64 {e2, e3}, $2;"]
    if bits == 4:  # e0, e1: the two code words; c0..c3 their nibble words
        lines += ["and.b32 c0, e0, 0x0F0F0F0F;", "shr.u32 c1, e0, 4;", "and.b32 c1, c1, 0x0F0F0F0F;",
                  "and.b32 c2, e1, 0x0F0F0F0F;", "shr.u32 c3, e1, 4;", "and.b32 c3, c3, 0x0F0F0F0F;"]
        codes, kind = ("c0", "c1", "c2", "c3"), "u32"
    else:
        codes, kind = ("e0", "e1", "e2", "e3"), "s32"
    for limb in range(limbs - 1, -1, -1):
        first = 3 + 2 * limb
        lines += [f"mov.b64 {{l0, l1}}, ${first};", f"mov.b64 {{l2, l3}}, ${first + 1};"]
        signed = "s32" if limb == limbs - 1 else "u32"
        if limb < limbs - 1:
            lines.append("shl.b32 s, s, 8;")
        for index, code in enumerate(codes):
            start = "0" if (limb == limbs - 1 and index == 0) else "s"
            lines.append(f"dp4a.{kind}.{signed} s, {code}, l{index}, {start};")
    lines.append("mov.b32 $0, s;")
    return "\n".join(["{", ".reg .b32 e0, e1, e2, e3, c0, c1, c2, c3, l0, l1, l2, l3, s;", *lines, "}"])


if triton is not None:

    @triton.jit
    def _limbs_kernel(x_ptr, words_ptr, meta_ptr, order_ptr, K: tl.constexpr, LIMBS: tl.constexpr,
                      CHUNKS: tl.constexpr):
        """`chunk_limbs` for CHUNKS chunks a program: words (K / 16, LIMBS, 4) int32, meta (K / 16, 2) float32."""
        chunk = tl.program_id(0) * CHUNKS + tl.arange(0, CHUNKS)
        inside = chunk < K // 16
        slot = tl.arange(0, 16)
        x = tl.load(x_ptr + chunk[:, None] * 16 + tl.load(order_ptr + slot)[None, :], mask=inside[:, None],
                    other=0).to(tl.float32)
        largest = tl.max(tl.abs(x), axis=1)
        biased = (largest.to(tl.int32, bitcast=True) >> 23) & 0xFF  # largest < 2^(biased - 126)
        shift = tl.where(largest > 0, 8 * LIMBS - 1 - (biased - 126), 0)
        shift = tl.minimum(shift, 126)
        scaled = x * ((shift + 127) << 23).to(tl.float32, bitcast=True)[:, None]
        bound: tl.constexpr = 2 ** (8 * LIMBS - 1) - 1
        # to the nearest integer, ties to even, as torch.round: 1.5 * 2^23 added and taken away (values from 2^7 up
        # are integers already: bf16's 8 bits under the chunk's largest at 2^(8 LIMBS - 2))
        rounded = tl.where(tl.abs(scaled) < 4194304.0, (scaled + 12582912.0) - 12582912.0, scaled)
        rest = tl.minimum(tl.maximum(rounded, -bound), bound).to(tl.int32)
        power = ((127 - shift) << 23).to(tl.float32, bitcast=True)
        tl.store(meta_ptr + 2 * chunk, power, mask=inside)
        tl.store(meta_ptr + 2 * chunk + 1, tl.sum(x, axis=1), mask=inside)
        place = (slot % 4) * 8
        for limb in tl.static_range(LIMBS):
            byte = (rest >> (8 * limb)) & 255
            packed = tl.sum(tl.reshape(byte << place[None, :], (CHUNKS, 4, 4)), axis=2)
            word = chunk[:, None] * (LIMBS * 4) + limb * 4 + tl.arange(0, 4)[None, :]
            tl.store(words_ptr + word, packed, mask=inside[:, None])

    @triton.jit
    def _chunk_terms(first, second, limbs64, meta_ptr, s_ptr, f_ptr, rows, parts, chunk, inside, N,
                     K: tl.constexpr, GROUP: tl.constexpr, INT4: tl.constexpr, LIMBS: tl.constexpr,
                     ASM: tl.constexpr, CONSTRAINTS: tl.constexpr, MODE: tl.constexpr):
        """What each (row, chunk) adds to `_dp4a_kernel`'s float32 accumulator (MODE 1-3, as it says)."""
        limb = limbs64 + chunk * (2 * LIMBS)
        l0 = tl.load(limb, mask=inside, other=0)
        l1 = tl.load(limb + 1, mask=inside, other=0)
        l2 = tl.load(limb + 2, mask=inside, other=0)
        l3 = tl.load(limb + 3, mask=inside, other=0)
        if MODE == 1:
            terms = (first + second + l0 + l1 + l2 + l3).to(tl.float32)
        else:
            power = tl.load(meta_ptr + 2 * chunk, mask=inside, other=0)
            if MODE == 2:
                sums = (first + second + l0 + l1 + l2 + l3).to(tl.int32)
            elif LIMBS == 2:
                sums = tl.inline_asm_elementwise(ASM, CONSTRAINTS, [first, second, l0, l1, l2, l3], dtype=tl.int32,
                                                 is_pure=True, pack=1)
            else:
                l4 = tl.load(limb + 4, mask=inside, other=0)
                l5 = tl.load(limb + 5, mask=inside, other=0)
                sums = tl.inline_asm_elementwise(ASM, CONSTRAINTS, [first, second, l0, l1, l2, l3, l4, l5],
                                                 dtype=tl.int32, is_pure=True, pack=1)
            if INT4:
                present = (parts < K // GROUP)[None, :, None]
                at = parts[None, :, None] * N + rows[:, None, None]  # (BLOCK_N, PARTS, 1): no layout conversion
                scale = tl.load(s_ptr + at, mask=present, other=0).to(tl.float32)
                offset = tl.load(f_ptr + at, mask=present, other=0).to(tl.float32)
                xsum = tl.load(meta_ptr + 2 * chunk + 1, mask=inside, other=0)
                terms = sums.to(tl.float32) * (scale * power) + offset * xsum
            else:
                terms = sums.to(tl.float32) * power
        return terms

    @triton.jit
    def _dp4a_kernel(words_ptr, meta_ptr, q_ptr, s_ptr, f_ptr, out_ptr, N, K: tl.constexpr, GROUP: tl.constexpr,
                     INT4: tl.constexpr, LIMBS: tl.constexpr, ASM: tl.constexpr, CONSTRAINTS: tl.constexpr,
                     BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, MODE: tl.constexpr = 3):
        """out[rows] = x . w[rows] from the limbs of x (`chunk_limbs`), BLOCK_N rows a program, BLOCK_K inputs a step:
        each (row, chunk)'s integer sum by `dp4a_asm`, scaled in float32. MODE < 3 (ladder.py) keeps the loads of
        the codes (0), of the limbs too (1), of the chunks' powers and sums and the groups' scales and offsets too
        (2), and replaces the arithmetic by a sum of the loaded bits."""
        rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
        PART: tl.constexpr = GROUP // 16 if INT4 else 4  # chunks of a group (int4's scale and offset loaded once)
        PARTS: tl.constexpr = BLOCK_K // (16 * PART)
        accumulator = tl.zeros((BLOCK_N, PARTS, PART), dtype=tl.float32)
        limbs64 = words_ptr.to(tl.pointer_type(tl.int64))
        codes64 = q_ptr.to(tl.pointer_type(tl.int64))
        for k0 in range(0, K, BLOCK_K):
            parts = k0 // (16 * PART) + tl.arange(0, PARTS)
            chunk = parts[None, :, None] * PART + tl.arange(0, PART)[None, None, :]  # (1, PARTS, PART)
            inside = chunk < K // 16
            if INT4:  # one int64 (two words) a chunk
                first = tl.load(codes64 + rows[:, None, None] * (K // 16) + chunk, mask=inside, other=0,
                                eviction_policy="evict_first")
                second = first
            else:  # two int64 (four words of four codes) a chunk
                where = codes64 + rows[:, None, None] * (K // 8) + 2 * chunk
                first = tl.load(where, mask=inside, other=0, eviction_policy="evict_first")
                second = tl.load(where + 1, mask=inside, other=0, eviction_policy="evict_first")
            if MODE == 0:
                accumulator += first.to(tl.float32)
            else:
                accumulator += _chunk_terms(first, second, limbs64, meta_ptr, s_ptr, f_ptr, rows, parts, chunk,
                                            inside, N, K, GROUP, INT4, LIMBS, ASM, CONSTRAINTS, MODE)
        total = tl.sum(tl.sum(accumulator, axis=2), axis=1)
        if not INT4:
            total = total * tl.load(s_ptr + rows).to(tl.float32)
        tl.store(out_ptr + rows, total.to(out_ptr.dtype.element_ty))


@functools.cache
def _orders(device: torch.device) -> dict:
    """INT4_ORDER and INT8_ORDER on `device`, made once (not while a CUDA graph is captured)."""
    return {bits: torch.tensor(order, dtype=torch.int32, device=device)
            for bits, order in ((4, INT4_ORDER), (8, INT8_ORDER))}


def make_limbs(x: torch.Tensor, limbs: int, bits: int, chunks_a_program: int = 32) -> tuple:
    """`_limbs_kernel` on one row: (words, meta) as `chunk_limbs` gives them."""
    k = x.numel()
    words = torch.empty(k // CHUNK, limbs, 4, dtype=torch.int32, device=x.device)
    meta = torch.empty(k // CHUNK, 2, dtype=torch.float32, device=x.device)
    order = _orders(x.device)[bits]
    _limbs_kernel[(triton.cdiv(k // CHUNK, chunks_a_program),)](x, words, meta, order, k, limbs, chunks_a_program)
    return words, meta


def dp4a_product(prepared: tuple, weight, config: tuple, limbs: int, dtype: torch.dtype, mode: int = 3) -> torch.Tensor:
    """x . w for one row whose limbs are `prepared`, `config` = (BLOCK_N, BLOCK_K, warps); `mode`: _dp4a_kernel's."""
    block_n, block_k, warps = config
    words, meta = prepared
    bits = 4 if weight.offset is not None else 8
    rows = weight.qweight.shape[0]
    k = words.shape[0] * CHUNK
    out = torch.empty(rows, dtype=dtype, device=words.device)
    group = k // weight.scale.shape[0] if bits == 4 else k
    constraints = "=r," + ",".join(["l"] * (2 + 2 * limbs))
    _dp4a_kernel[(rows // block_n,)](words, meta, weight.qweight, weight.scale,
                                     weight.offset if bits == 4 else weight.scale, out, rows, k, group, bits == 4,
                                     limbs, dp4a_asm(bits, limbs), constraints, block_n, block_k, mode,
                                     num_warps=warps)
    return out


def check() -> None:
    """CPU: the emulated dp4a sums against float64 products (int4 groups of 64, int8), with outlier features."""
    torch.manual_seed(0)
    for bits in (4, 8):
        weight = packed_weight(torch.randn(64, 512, dtype=torch.bfloat16) / 16, bits)
        x = torch.randn(512)
        x[:4] *= 100
        x[32:48] = 0
        x = x.bfloat16()
        unrounded, rounded = exact_product(x, weight, False), exact_product(x, weight, True)
        print(f"int{bits} asm:\n{dp4a_asm(bits, 2)}")
        for limbs in (2, 3):
            ours = emulated_product(x, weight, limbs)
            print(f"int{bits}, {limbs} limbs: relative error against unrounded weights "
                  f"{float((ours - unrounded).norm() / unrounded.norm()):.3e}, dequantize()'s "
                  f"{float((ours - rounded).norm() / rounded.norm()):.3e}")


def check_limbs_kernel() -> None:
    """CPU (TRITON_INTERPRET=1): `_limbs_kernel` equals `chunk_limbs`."""
    torch.manual_seed(0)
    x = torch.randn(11008)
    x[:4] *= 100
    x[32:48] = 0
    x = x.bfloat16()
    for limbs, bits in itertools.product((2, 3), (4, 8)):
        words, meta = make_limbs(x, limbs, bits)
        expected = chunk_limbs(x, limbs, INT4_ORDER if bits == 4 else INT8_ORDER)
        print(f"limbs kernel, {limbs} limbs, int{bits} order: words equal {torch.equal(words, expected[0])}, "
              f"meta equal {torch.equal(meta, expected[1])}")


def main() -> None:
    from bench_records import append_record
    from profile_decode import replay_seconds
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="dp4a_rows.jsonl")
    parser.add_argument("--bits", default="4,8")
    parser.add_argument("--limbs", default="2,3")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    args = parser.parse_args()
    for bits, shape in itertools.product(map(int, args.bits.split(",")), args.shapes.split(",")):
        n, k = SHAPES[shape]
        copies = max(6, math.ceil(200e6 / (n * k / (2 if bits == 4 else 1))))
        bf16 = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5 for _ in range(copies)]
        packed = [packed_weight(w, bits) for w in bf16]
        x = torch.randn(k, device="cuda")
        x[:4] *= 30
        x = x.bfloat16()
        unrounded, rounded = exact_product(x, packed[0], False), exact_product(x, packed[0], True)
        record = dict(bits=bits, shape=shape)

        def errors(out: torch.Tensor) -> dict:
            out = out.double()
            return {"error_unrounded": float((out - unrounded).norm() / unrounded.norm()),
                    "error_dequantized": float((out - rounded).norm() / rounded.norm())}

        _orders(x.device)
        row = x.view(1, -1)
        append_record(args.output, dict(record, way="shipped", **errors(launch_quantized_kernel(row, [packed[0]])[0]),
                                        us=replay_seconds(lambda: [launch_quantized_kernel(row, [w]) for w in packed])
                                        / copies * 1e6))
        append_record(args.output, dict(record, way="bf16 cuBLAS", us=replay_seconds(
            lambda: [w @ x for w in bf16[: max(3, copies // 4)]]) / max(3, copies // 4) * 1e6))
        for limbs in map(int, args.limbs.split(",")):
            prepared = make_limbs(x, limbs, bits)
            expected = chunk_limbs(x, limbs, INT4_ORDER if bits == 4 else INT8_ORDER)
            append_record(args.output, dict(record, way=f"limbs kernel, {limbs} limbs",
                                            words_equal=bool(torch.equal(prepared[0], expected[0])),
                                            powers_equal=bool(torch.equal(prepared[1][:, 0], expected[1][:, 0])),
                                            sums_close=bool(torch.allclose(prepared[1][:, 1], expected[1][:, 1])),
                                            us=replay_seconds(lambda: [make_limbs(x, limbs, bits) for _ in range(8)])
                                            / 8 * 1e6))
            for config in CONFIGS if limbs == 2 else THREE_LIMB_CONFIGS:
                if n % config[0]:
                    continue
                try:
                    out = dp4a_product(prepared, packed[0], config, limbs, x.dtype)
                    seconds = replay_seconds(lambda: [dp4a_product(prepared, w, config, limbs, x.dtype)
                                                      for w in packed])
                except Exception as exception:  # noqa: BLE001 - a configuration that fails is recorded
                    append_record(args.output, dict(record, way=["dp4a", limbs, *config],
                                                    error=f"{type(exception).__name__}: {exception}"[-300:]))
                    continue
                append_record(args.output, dict(record, way=["dp4a", limbs, *config], us=seconds / copies * 1e6,
                                                **errors(out)))


if __name__ == "__main__":
    with torch.no_grad():
        if sys.argv[1:] == ["check"]:
            check()
            if os.environ.get("TRITON_INTERPRET") == "1":
                check_limbs_kernel()
        else:
            main()
