"""The decode step's kernels as programmatic dependent launches (decode_kernels.py), compiled for the H100 (sm_90)
without a GPU: each reads nothing and writes nothing before it waits for the kernel before (weights it only asks L2
for), and lets the next kernel start only after waiting. tests/test_cuda.py runs them on a GPU."""

import pytest
import torch

import decode_kernels
from conftest import run_child

# Every kernel of a decode step (bf16 and quantized products, one row and several, the split tiles' sums, the
# attention), compiled as the launches make them: DEPENDENT on, the weight kernels' PREFETCH too.
COMPILE_DEPENDENT = """
import os
import re
import sys
import decode_attention, decode_kernels, quantized_decode_kernels
sys.path.insert(0, os.path.join(os.path.dirname(decode_kernels.__file__), "benchmarks"))
from inspect_kernel import _argument_types, _compiled
from triton.compiler import ASTSource

bf16_products = {"x_ptr": "*bf16", "out_ptr": "*bf16", "w0_ptr": "*bf16", "w1_ptr": "*bf16", "w2_ptr": "*bf16",
                 "gate_ptr": "*bf16", "up_ptr": "*bf16", "n0": "i32", "n01": "i32"}
attention = {name: "*bf16" for name in ("q_ptr", "k_new_ptr", "v_new_ptr", "cos_ptr", "sin_ptr", "k_ptr", "v_ptr",
                                        "out_ptr")}
attention.update({name: "*fp32" for name in ("partial_ptr", "best_ptr", "total_ptr")}, mask_ptr="*u8",
                 slots_ptr="*i64", arrivals_ptr="*i32", scale="fp32")
attention.update({name: "i32" for name in ("q_row", "k_new_row", "v_new_row", "cos_row", "k_row", "k_head", "k_slot",
                                           "v_row", "v_head", "v_slot", "mask_row", "length", "slice_slots")})
one_row = dict(BLOCK_M=1, BLOCK_N=8, BLOCK_K=512, BIT_CAST=False, WEIGHTS_FIRST=False, SPLIT_K=1, PREFETCH=True)
kernels = {
    "bf16 q|k|v": (decode_kernels._stacked_matvec_kernel, bf16_products,
                   dict(K=4096, BLOCK_N=4, BLOCK_K=512, PREFETCH=True)),
    "bf16 gate|up": (decode_kernels._gated_matvec_kernel, bf16_products,
                     dict(K=4096, BLOCK_N=4, BLOCK_K=512, PREFETCH=True)),
    "int4 gate|up, one row": (quantized_decode_kernels._quantized_kernel, _argument_types("bf16", "*i32"),
                              dict(K=11008, GROUP=64, INT4=True, GATED=True, **one_row)),
    "int8 q|k|v, one row": (quantized_decode_kernels._quantized_kernel, _argument_types("bf16", "*i8"),
                            dict(K=4096, GROUP=4096, INT4=False, **one_row)),
    "int4, 16 rows split in 4": (quantized_decode_kernels._quantized_kernel,
                                 {**_argument_types("bf16", "*i32"), "partials_ptr": "*fp32"},
                                 dict(K=4096, GROUP=64, INT4=True, BLOCK_M=16, BLOCK_N=64, BLOCK_K=256, BIT_CAST=False,
                                      WEIGHTS_FIRST=True, SPLIT_K=4)),
    "split sums": (quantized_decode_kernels._split_sum_kernel,
                   {"partials_ptr": "*fp32", "out_ptr": "*bf16", "size": "i32"}, dict(SPLIT_K=4, BLOCK=1024)),
    "attention": (decode_attention._step_attention_kernel, attention,
                  dict(HEADS=32, GROUPS=1, SLICES=4, SLICES_POW2=4, HEAD_DIM=128, BLOCK_S=64)),
}
for name, (kernel, types, constants) in kernels.items():
    types = {argument: kind for argument, kind in types.items() if argument in kernel.arg_names}
    ptx = _compiled(ASTSource, kernel, types=types, constants={**constants, "DEPENDENT": True}, capability=90,
                    options={"num_warps": 4, "launch_pdl": True})["ptx"]
    body = re.sub(r"//.*", "", ptx.split(".entry", 1)[1])
    wait, release = body.find("griddepcontrol.wait"), body.find("griddepcontrol.launch_dependents")
    accesses = [match.start() for match in re.finditer(r"\\b(ld|st|atom|red|cp)\\.(global|async)", body)]
    prefetches = len(re.findall(r"prefetch\\.global\\.L2", body[:wait]))
    print(f"{name}: wait at {wait}, release at {release}, first access at {min(accesses)}, "
          f"prefetches before the wait {prefetches}")
    assert 0 <= wait < release < min(accesses), name
    assert (prefetches > 0) == constants.get("PREFETCH", False), name
print("all wait first")
"""


def test_the_step_kernels_wait_for_the_kernel_before_ahead_of_any_read_or_write(tmp_path):
    """A dependent launch may start while the kernel before still runs: every step kernel compiled as one holds
    `griddepcontrol.wait` before its first global load, store or atomic, releases the next kernel
    (`launch_dependents`) only after it, and the weight kernels ask L2 for their weights before waiting."""
    pytest.importorskip("triton")
    output = run_child(COMPILE_DEPENDENT, tmp_path, interpret=False)
    assert "all wait first" in output, output


def test_cpu_tensors_take_plain_launches():
    """The interpreter and CPU tensors get no dependent launch (no PTX runs there)."""
    x = torch.zeros(4)
    assert not decode_kernels.dependent_launch(x)
    assert decode_kernels.launch_options(x) == {"DEPENDENT": False, "launch_pdl": False}
    assert not decode_kernels.prefetch_weights(x)
