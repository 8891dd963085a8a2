"""Product launches that also add the residual and normalise (decode_kernels.matvec_residual_norm,
quantized_decode_kernels.quantized_residual_norm: the last program to finish does it) against the unfused ops, under
Triton's interpreter on the CPU (the same kernel source the GPU compiles; tests/test_cuda.py runs them compiled)."""

import pytest
import torch

from conftest import run_child
from decode_kernels import fuses_residual_norm, matvec_residual_norm, residual_norm
from fast_decoder import project_residual_norm
from quantized_decode_kernels import packed_weight, quantized_residual_norm

# Widths of a power of two and not (the norm's block masked past the row), bf16 weights, int8 (both conversions) and
# int4; float16, which Triton's interpreter rounds to nearest as a GPU does (it truncates bfloat16). Each launch twice:
# the second finds the arrival counter back at 0. The sum must equal the unfused one exactly (the same product, one
# rounding); the norm may differ by float32 summation order, so by a step of float16 at most.
INTERPRETED_KERNELS = """
import torch
import decode_kernels
import quantized_decode_kernels as kernels

failures = 0
for kind in ("bf16 weights", "int8", "int8 bit cast", "int4"):
    for width in (128, 192):
        torch.manual_seed(width)
        x = torch.randn(1, 256).half()
        residual, norm = torch.randn(1, width).half(), (1 + 0.1 * torch.randn(width)).half()
        if kind == "bf16 weights":
            weight = (0.05 * torch.randn(width, 256)).half()
            product = torch.nn.functional.linear(x.float(), weight.float()).half()
            kernel, arguments = decode_kernels._matvec_residual_norm_kernel, (weight,)
            grid, meta = (width // 4,), dict(K=256, BLOCK_N=4, BLOCK_K=128)
        else:
            weight = kernels.packed_weight((0.05 * torch.randn(width, 256)).bfloat16(), 4 if kind == "int4" else 8)
            config = {"BLOCK_N": 8, "BLOCK_K": 128, "BIT_CAST": kind == "int8 bit cast"}
            product = kernels.launch_quantized_kernel(x, [weight], {**kernels.kernel_config(1, 8), **config})
            kernel = kernels._residual_norm_kernel
            arguments = (weight.qweight, weight.scale, kernels.weight_offsets(weight))
            grid = (width // 8,)
            meta = dict(K=256, GROUP=kernels.group_size(weight), INT4=kind == "int4", **config)
        expected_hidden, expected_normed = decode_kernels.residual_norm(residual, product, norm=norm, eps=1e-5)
        for repeat in range(2):
            hidden, normed = decode_kernels.launch_residual_norm(kernel, grid, x=x, weight_arguments=arguments,
                                                                 residual=residual, norm=norm, eps=1e-5, **meta)
            step = torch.finfo(torch.float16).eps * expected_normed.float().abs().clamp(min=1)
            ok = (torch.equal(hidden, expected_hidden)
                  and bool(((normed.float() - expected_normed.float()).abs() <= step).all())
                  and int(decode_kernels.arrival_counters(x.device, 1)[0]) == 0)
            failures += not ok
            print(f"{kind} width={width} repeat={repeat}:", "ok" if ok else
                  f"hidden max error {float((hidden.float() - expected_hidden.float()).abs().max())}, "
                  f"normed {float((normed.float() - expected_normed.float()).abs().max())}")
print("failures", failures)
"""


def test_launches_add_the_residual_and_normalise_as_the_unfused_ops_do(tmp_path):
    pytest.importorskip("triton")
    output = run_child(INTERPRETED_KERNELS, tmp_path, interpret=True)
    assert output.count(": ok") == 16 and "failures 0" in output, output


@pytest.mark.parametrize("weight_kind", ["bf16", "int8", "int4"])
def test_off_the_gpu_the_ops_and_the_decoder_take_the_unfused_add_and_norm(weight_kind):
    """On the CPU (and for anything the kernels do not take) the ops compute the unfused add and norm, and the fast
    decoder's layers call the product and the add and norm themselves (for the compiler to fuse), one row or
    several; all give the same numbers."""
    torch.manual_seed(0)
    weight = 0.05 * torch.randn(64, 128, dtype=torch.bfloat16)
    projection = weight if weight_kind == "bf16" else packed_weight(weight, int(weight_kind[-1]))
    x, residual = torch.randn(1, 1, 128, dtype=torch.bfloat16), torch.randn(1, 1, 64, dtype=torch.bfloat16)
    norm = 1 + 0.1 * torch.randn(64, dtype=torch.bfloat16)
    assert not fuses_residual_norm(x, residual, norm)
    one_row = project_residual_norm(x, projection, bias=None, residual=residual, norm=norm, eps=1e-6)
    two_rows = project_residual_norm(x.expand(2, 1, 128), projection, bias=None, residual=residual.expand(2, 1, 64),
                                     norm=norm, eps=1e-6)
    for ours, theirs in zip(one_row, two_rows):
        assert ours.shape == (1, 1, 64) and torch.equal(ours, theirs[:1])
    if weight_kind == "bf16":
        expected = residual_norm(residual, torch.nn.functional.linear(x, weight), norm=norm, eps=1e-6)
        ours = matvec_residual_norm(x, weight, residual=residual, norm=norm, eps=1e-6)
        assert all(torch.equal(a, b) for a, b in zip(ours, expected))
    else:
        assert all(torch.equal(a, b) for a, b in zip(
            quantized_residual_norm(x, projection, residual=residual, norm=norm, eps=1e-6), one_row))
