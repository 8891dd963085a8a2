"""The decode step's attention kernels (decode_attention.py) against SDPA, run by Triton's interpreter on the CPU
(the same kernel source the GPU compiles; tests/test_cuda.py runs the fast path on them compiled)."""

import pytest
import torch

from conftest import run_child
from decode_attention import decode_attention, reference_attention

# Rows whose caches end at different slots, a mask with holes (a left-padded prompt, a released row's single slot),
# grouped key/value heads, head sizes 64 and 128, one slice and several (the slices' partials combined, some slices
# wholly past a row's end), a cache view cut from a longer one (strides that are not the shape's).
INTERPRETED_KERNELS = """
import torch
import decode_attention as attention

failures = 0
for heads, kv_heads, head_dim, length, slices, dtype in [(4, 4, 64, 70, 1, torch.bfloat16),
                                                         (4, 4, 64, 70, 3, torch.float16),
                                                         (6, 2, 128, 96, 5, torch.bfloat16),
                                                         (2, 1, 64, 40, 2, torch.float32)]:
    torch.manual_seed(length + slices)
    rows = 3
    query = torch.randn(rows, heads, 1, head_dim).to(dtype)
    full_key = torch.randn(rows + 1, kv_heads, length + 30, head_dim).to(dtype)
    full_value = torch.randn(rows + 1, kv_heads, length + 30, head_dim).to(dtype)
    key, value = full_key[:rows, :, :length], full_value[:rows, :, :length]
    ends = torch.tensor([length, 33, 1])
    mask = torch.arange(length + 30)[None, :] < ends[:, None]
    mask[0, :5] = False  # left padding
    mask[1, 7:9] = False
    mask = mask[:, :length]
    ours = attention.launch_decode_attention(query=query, key=key, value=value, mask=mask, ends=ends,
                                             scale=head_dim ** -0.5, slices=slices).float()
    reference = attention.reference_attention(query=query.float(), key=key.float(), value=value.float(), mask=mask,
                                              ends=ends, scale=head_dim ** -0.5)
    step = torch.finfo(dtype).eps * reference.abs().clamp(min=1)
    ok = ours.shape == query.shape and bool(((ours - reference).abs() <= 2 * step).all())
    failures += not ok
    print(f"heads={heads} kv_heads={kv_heads} head_dim={head_dim} slices={slices} {dtype}:",
          "ok" if ok else f"max error {float((ours - reference).abs().max())}")
print("failures", failures)
"""


def test_kernels_equal_sdpa(tmp_path):
    pytest.importorskip("triton")
    output = run_child(INTERPRETED_KERNELS, tmp_path, interpret=True)
    assert output.count(": ok") == 4 and "failures 0" in output, output


def test_slices_fill_the_gpu_without_slices_shorter_than_a_step():
    from decode_attention import BLOCK_SLOTS, slices_for

    pytest.importorskip("triton")
    assert slices_for(pairs=32, length=4096, multiprocessors=132) == 17  # batch 1, 32 heads: 4 programs an SM
    assert slices_for(pairs=32, length=256, multiprocessors=132) == 256 // BLOCK_SLOTS
    assert slices_for(pairs=64 * 32, length=4096, multiprocessors=132) == 1  # a large batch fills the GPU alone


def test_cpu_takes_sdpa_over_the_masked_slots_before_each_end():
    torch.manual_seed(0)
    query, key, value = torch.randn(2, 4, 1, 16), torch.randn(2, 2, 10, 16), torch.randn(2, 2, 10, 16)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, :3] = False
    ends = torch.tensor([10, 6])
    ours = decode_attention(query, key, value, mask, ends, 0.25)
    groups = key.repeat_interleave(2, dim=1), value.repeat_interleave(2, dim=1)
    for row, slots in ((0, slice(0, 10)), (1, slice(3, 6))):
        expected = torch.softmax(query[row] @ groups[0][row, :, slots].transpose(-1, -2) * 0.25, -1) @ groups[1][
            row, :, slots]
        torch.testing.assert_close(ours[row], expected)
    assert torch.equal(ours, reference_attention(query=query, key=key, value=value, mask=mask, ends=ends, scale=0.25))
