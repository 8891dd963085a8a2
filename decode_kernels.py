"""Matrix-vector kernels for one-token decoding (Triton), as torch custom ops.

A batch-1 decode step reads every weight once and does little else, so its speed is the speed at which the
matrix-vector products stream weights. cuBLAS reaches 2.0-2.6 TB/s on the 7B shapes on an H100 whose copy bandwidth
is 3.0 TB/s; these kernels stream several weights in one launch (q|k|v), apply the SiLU gate inside the gate|up
product, and reach 2.3-3.0 TB/s (benchmarks/RESULTS.md). Anything else (several rows, CPU, sizes the kernels do not
tile) goes to `F.linear`, so the ops are exact drop-ins wherever they run.

A product followed by a residual add and an RMSNorm (a Llama layer's o and down projections) can take both into its
launch (`matvec_residual_norm`): its last program to finish adds and normalises the whole row, where a kernel of its
own would cost a launch, about as long as the work (benchmarks/RESULTS.md, "The norm in the product's launch").
"""

from typing import Callable

import torch
import torch.nn.functional as F

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the ops fall back to F.linear
    triton = None

BLOCK_ROWS = 4  # weight rows per program: many small programs keep every SM streaming
BLOCK_COLUMNS = 512
MAX_NORM_WIDTH = 8192  # the widest row one program adds and normalises in registers (`residual_norm_by_last`)

if triton is not None:

    @triton.jit
    def _row_dots(w_ptr, x_ptr, K: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        """Float32 dot products of BLOCK_N consecutive weight rows (row length K) with the vector x."""
        rows = tl.arange(0, BLOCK_N)[:, None]
        accumulator = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
        for start in range(0, K, BLOCK_K):
            columns = start + tl.arange(0, BLOCK_K)
            inside = columns < K
            weights = tl.load(w_ptr + rows * K + columns[None, :], mask=inside[None, :], other=0.0)
            vector = tl.load(x_ptr + columns, mask=inside, other=0.0)
            accumulator += weights.to(tl.float32) * vector.to(tl.float32)[None, :]
        return tl.sum(accumulator, axis=1)

    @triton.jit
    def _stacked_matvec_kernel(x_ptr, out_ptr, w0_ptr, w1_ptr, w2_ptr, n0, n01, K: tl.constexpr,
                               BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        """out = [w0 @ x, w1 @ x, w2 @ x]; row blocks never straddle two weights (sizes are multiples of BLOCK_N)."""
        start = tl.program_id(0).to(tl.int64) * BLOCK_N
        if start < n0:
            w_ptr = w0_ptr + start * K
        elif start < n01:
            w_ptr = w1_ptr + (start - n0) * K
        else:
            w_ptr = w2_ptr + (start - n01) * K
        dots = _row_dots(w_ptr, x_ptr, K, BLOCK_N, BLOCK_K)
        tl.store(out_ptr + start + tl.arange(0, BLOCK_N), dots.to(out_ptr.dtype.element_ty))

    @triton.jit
    def _gated_matvec_kernel(x_ptr, out_ptr, gate_ptr, up_ptr, K: tl.constexpr, BLOCK_N: tl.constexpr,
                             BLOCK_K: tl.constexpr):
        """out = silu(gate @ x) * (up @ x), rounded to the output dtype after each product like the unfused ops."""
        start = tl.program_id(0).to(tl.int64) * BLOCK_N
        gate = _row_dots(gate_ptr + start * K, x_ptr, K, BLOCK_N, BLOCK_K).to(out_ptr.dtype.element_ty)
        up = _row_dots(up_ptr + start * K, x_ptr, K, BLOCK_N, BLOCK_K).to(out_ptr.dtype.element_ty)
        gate = gate.to(tl.float32)
        silu = (gate / (1.0 + tl.exp(-gate))).to(out_ptr.dtype.element_ty)
        tl.store(out_ptr + start + tl.arange(0, BLOCK_N), silu * up)

    @triton.jit
    def last_to_arrive(arrivals_ptr, index, PROGRAMS):
        """After this program has stored its partial results: whether it is the last of the PROGRAMS programs counted
        in counter `index` of `arrival_counters`, which the last sets back to 0. A barrier first, so that every
        thread's stores precede the release; the last program then reads the others' results past L1 (`.cg`)."""
        tl.debug_barrier()
        last = tl.atomic_add(arrivals_ptr + index, 1, sem="acq_rel", scope="gpu") == PROGRAMS - 1
        tl.store(arrivals_ptr + index, 0, mask=last)  # no program of this launch counts here again
        return last

    @triton.jit
    def residual_norm_by_last(out_ptr, residual_ptr, norm_ptr, hidden_ptr, normed_ptr, arrivals_ptr, eps, N,
                              NORM_BLOCK: tl.constexpr):
        """Called by every program of a one-row product's launch (grid axis 0) once it has stored its outputs of
        `out` (N values): the last to finish writes hidden = residual + out and normed = RMSNorm(hidden) * norm,
        rounded as `residual_norm` rounds them (the sum in hidden's dtype, normalised in float32, scaled in normed's
        dtype). NORM_BLOCK: N rounded up to a power of two (at most MAX_NORM_WIDTH, held in registers)."""
        if last_to_arrive(arrivals_ptr, 0, tl.num_programs(0)):
            where = tl.arange(0, NORM_BLOCK)
            inside = where < N
            out = tl.load(out_ptr + where, mask=inside, other=0, cache_modifier=".cg").to(tl.float32)
            hidden = (tl.load(residual_ptr + where, mask=inside, other=0).to(tl.float32) + out).to(
                hidden_ptr.dtype.element_ty)
            tl.store(hidden_ptr + where, hidden, mask=inside)
            as_float = hidden.to(tl.float32)
            normalised = (as_float * tl.rsqrt(tl.sum(as_float * as_float, axis=0) / N + eps)).to(hidden.dtype)
            scaled = tl.load(norm_ptr + where, mask=inside, other=0).to(tl.float32) * normalised.to(tl.float32)
            tl.store(normed_ptr + where, scaled.to(normed_ptr.dtype.element_ty), mask=inside)

    @triton.jit
    def _matvec_residual_norm_kernel(x_ptr, out_ptr, w_ptr, residual_ptr, norm_ptr, hidden_ptr, normed_ptr,
                                     arrivals_ptr, eps, N, K: tl.constexpr, BLOCK_N: tl.constexpr,
                                     BLOCK_K: tl.constexpr, NORM_BLOCK: tl.constexpr):
        """out = w @ x, then (its last program) hidden = residual + out and normed = its RMSNorm times norm."""
        start = tl.program_id(0).to(tl.int64) * BLOCK_N
        dots = _row_dots(w_ptr + start * K, x_ptr, K, BLOCK_N, BLOCK_K)
        tl.store(out_ptr + start + tl.arange(0, BLOCK_N), dots.to(out_ptr.dtype.element_ty))
        residual_norm_by_last(out_ptr, residual_ptr, norm_ptr, hidden_ptr, normed_ptr, arrivals_ptr, eps, N,
                              NORM_BLOCK)

else:  # only the kernels call them
    last_to_arrive = residual_norm_by_last = None


def define_op(name: str, fake: Callable[..., torch.Tensor], *, mutates_args: tuple[str, ...] = ()
              ) -> Callable[[Callable], Callable]:
    """`torch.library.custom_op` (writing into the arguments named by `mutates_args`, if any) with its fake
    (shape-only) implementation, defined once per process. transformers imports a model's remote code again as
    `transformers_modules.<folder>.<module>`, so a kernel module can run several times in one process; defining an op
    again would free the operator that the first copy's functions still call (they crash at their next call), so a
    later copy takes the op already defined."""

    def define(implementation: Callable) -> Callable:
        namespace, op_name = name.split("::")
        try:
            existing = getattr(getattr(torch.ops, namespace), op_name).default
        except AttributeError:
            op = torch.library.custom_op(name, mutates_args=mutates_args)(implementation)
            op.register_fake(fake)
            return op
        wanted = name + str(torch.library.infer_schema(implementation, mutates_args=mutates_args))
        if str(existing._schema) != wanted:
            raise RuntimeError(f"{name} is already defined as {existing._schema} by another copy of this code, which "
                               f"this copy ({wanted}) cannot share: load one version of the model code per process")
        return existing

    return define


_ARRIVALS: dict[torch.device, list[torch.Tensor]] = {}


def arrival_counters(device: torch.device, count: int) -> torch.Tensor:
    """At least `count` zeroed int32 counters that a launch's programs count themselves in (`last_to_arrive`), the
    last to arrive combining the others' partial results and setting its counter back to 0 (decode_attention.py's
    slices). Launches run one after another on a stream, so all share them. Kept for the process: a captured CUDA
    graph holds their address, so a larger set is added, never swapped in."""
    held = _ARRIVALS.setdefault(device, [])
    if not held or held[-1].numel() < count:
        if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
            raise RuntimeError("arrival counters must be allocated before a CUDA graph capture: run the launch once "
                               "uncaptured first (GraphedCall's warm-up does)")
        held.append(torch.zeros(count, dtype=torch.int32, device=device))
    return held[-1]


def rms_norm(hidden: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Llama's RMSNorm: normalised in float32, scaled in the input dtype."""
    as_float = hidden.float()
    as_float = as_float * torch.rsqrt(as_float.pow(2).mean(-1, keepdim=True) + eps)
    return weight * as_float.to(hidden.dtype)


def residual_norm(residual: torch.Tensor, product: torch.Tensor, *, norm: torch.Tensor,
                  eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden, normed): hidden = residual + product and its RMSNorm, as a Llama layer adds and normalises."""
    hidden = residual + product
    return hidden, rms_norm(hidden, norm, eps)


def one_row(x: torch.Tensor) -> bool:
    """Whether x holds one row (batch-1 decoding): what the matrix-vector kernels serve."""
    return x.numel() == x.shape[-1]


def fuses_residual_norm(x: torch.Tensor, residual: torch.Tensor, norm: torch.Tensor) -> bool:
    """Whether a product's launch can add the residual and normalise (`residual_norm_by_last`): one row on CUDA, of
    a width one program holds, in one dtype throughout."""
    return (triton is not None and x.is_cuda and one_row(x) and one_row(residual)
            and residual.shape[-1] <= MAX_NORM_WIDTH and residual.is_contiguous() and norm.is_contiguous()
            and x.dtype == residual.dtype == norm.dtype)


def launch_residual_norm(kernel, grid: tuple | Callable[[dict], tuple], *, x: torch.Tensor, weight_arguments: tuple,
                         residual: torch.Tensor, norm: torch.Tensor, eps: float, least_norm_block: int = 1,
                         **meta) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs a one-row product kernel whose programs end in `residual_norm_by_last` (or do as it does), with the
    arguments they share: (x, out, *weight_arguments, residual, norm, hidden, normed, arrivals, eps, N, ...,
    NORM_BLOCK: the width rounded up to a power of two, at least `least_norm_block`). Returns (hidden, normed)."""
    width = residual.shape[-1]
    out, hidden, normed = (residual.new_empty(residual.shape) for _ in range(3))
    kernel[grid](x.contiguous(), out, *weight_arguments, residual, norm, hidden, normed,
                 arrival_counters(x.device, 1), eps, width, **meta,
                 NORM_BLOCK=max(triton.next_power_of_2(width), least_norm_block))
    return hidden, normed


def _use_kernels(x: torch.Tensor, weights: list[torch.Tensor]) -> bool:
    """One row, on CUDA, contiguous weights whose sizes the kernels tile."""
    return (
        triton is not None and x.is_cuda and one_row(x)
        and all(w.is_contiguous() and w.shape[0] % BLOCK_ROWS == 0 and w.dtype == x.dtype for w in weights)
    )


def _stacked_matvec_shape(x: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
    return x.new_empty(*x.shape[:-1], sum(w.shape[0] for w in weights))


@define_op("nextgpt::stacked_matvec", fake=_stacked_matvec_shape)
def stacked_matvec(x: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
    """`torch.cat([F.linear(x, w) for w in weights], -1)` for one to three weights of the same input width."""
    if not (1 <= len(weights) <= 3 and _use_kernels(x, weights)):
        return torch.cat([F.linear(x, w) for w in weights], dim=-1)
    sizes = [w.shape[0] for w in weights]
    out = x.new_empty(*x.shape[:-1], sum(sizes))
    padded = weights + [weights[-1]] * (3 - len(weights))
    _stacked_matvec_kernel[(sum(sizes) // BLOCK_ROWS,)](
        x.contiguous(), out, *padded, sizes[0], sum(sizes[:2]), x.shape[-1], BLOCK_ROWS, BLOCK_COLUMNS, num_warps=4
    )
    return out


def _gated_matvec_shape(x: torch.Tensor, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return x.new_empty(*x.shape[:-1], gate.shape[0])


@define_op("nextgpt::gated_matvec", fake=_gated_matvec_shape)
def gated_matvec(x: torch.Tensor, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """`F.silu(F.linear(x, gate)) * F.linear(x, up)`: the input of a Llama MLP's down projection."""
    if not (_use_kernels(x, [gate, up]) and gate.shape == up.shape):
        return F.silu(F.linear(x, gate)) * F.linear(x, up)
    out = x.new_empty(*x.shape[:-1], gate.shape[0])
    _gated_matvec_kernel[(gate.shape[0] // BLOCK_ROWS,)](
        x.contiguous(), out, gate, up, x.shape[-1], BLOCK_ROWS, BLOCK_COLUMNS, num_warps=4
    )
    return out


def _residual_norm_shape(x: torch.Tensor, weight: torch.Tensor, residual: torch.Tensor, norm: torch.Tensor,
                         eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    return residual.new_empty(residual.shape), residual.new_empty(residual.shape)


@define_op("nextgpt::matvec_residual_norm", fake=_residual_norm_shape)
def matvec_residual_norm(x: torch.Tensor, weight: torch.Tensor, residual: torch.Tensor, norm: torch.Tensor,
                         eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """`residual_norm(residual, F.linear(x, weight), norm=norm, eps=eps)`: for one row on CUDA in the product's
    launch."""
    if not (fuses_residual_norm(x, residual, norm) and _use_kernels(x, [weight]) and residual.numel() == len(weight)):
        return residual_norm(residual, F.linear(x, weight), norm=norm, eps=eps)
    return launch_residual_norm(_matvec_residual_norm_kernel, (len(weight) // BLOCK_ROWS,), x=x,
                                weight_arguments=(weight,), residual=residual, norm=norm, eps=eps,
                                K=x.shape[-1], BLOCK_N=BLOCK_ROWS, BLOCK_K=BLOCK_COLUMNS, num_warps=4)


__all__ = ["arrival_counters", "define_op", "fuses_residual_norm", "gated_matvec", "last_to_arrive",
           "launch_residual_norm", "matvec_residual_norm", "one_row", "residual_norm", "residual_norm_by_last",
           "rms_norm", "stacked_matvec"]
