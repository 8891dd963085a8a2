"""The decode step's attention kernels (decode_attention.py) against SDPA, run by Triton's interpreter on the CPU
(the same kernel source the GPU compiles; tests/test_cuda.py runs the fast path on them compiled)."""

import pytest
import torch

from conftest import run_child
from decode_attention import step_attention

# Rows whose new tokens fall at different slots (the last of the cache, one inside it, the first), a mask with holes (a
# left-padded prompt, a released row's single slot), grouped key/value heads, head sizes 64 and 128, one slice and
# several (the last program of each (row, head) combining them, some slices wholly past a row's slot), a cache view
# cut from a longer one (strides that are not the shape's), the new token's q|k|v as views of one product. Twice per
# case: the second launch finds the slices' counters back at 0.
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
    qkv = torch.randn(rows, (heads + 2 * kv_heads) * head_dim).to(dtype)
    query, key, value = (part.view(rows, -1, head_dim) for part in qkv.split([heads * head_dim,
                                                                             kv_heads * head_dim,
                                                                             kv_heads * head_dim], dim=-1))
    angles = torch.rand(rows, head_dim // 2) * 6
    cos, sin = (torch.cat([f(angles)] * 2, dim=-1).to(dtype) for f in (torch.cos, torch.sin))
    caches = [torch.randn(rows + 1, kv_heads, length + 30, head_dim).to(dtype) for _ in range(2)]
    slots = torch.tensor([length - 1, 32, 0])
    mask = torch.arange(length + 30)[None, :] <= slots[:, None]
    mask[0, :5] = False  # left padding
    mask[1, 7:9] = False
    mask = mask[:, :length]
    for repeat in range(2):
        ours_caches = [cache.clone() for cache in caches]
        ours = attention.launch_step_attention(
            query=query, key=key, value=value, cos=cos, sin=sin, key_cache=ours_caches[0][:rows, :, :length],
            value_cache=ours_caches[1][:rows, :, :length], mask=mask, slots=slots, scale=head_dim ** -0.5,
            slices=slices).float()
        expected_caches = [cache.clone() for cache in caches]
        new_key, new_query = (attention.rotate(part[:, :, None].float(), cos[:, None].float(), sin[:, None].float())
                              for part in (key, query))
        expected_caches[0][torch.arange(rows), :, slots] = new_key[:, :, 0].to(dtype)
        expected_caches[1][torch.arange(rows), :, slots] = value
        expected = attention.reference_attention(
            query=new_query.to(dtype).float(), key=expected_caches[0][:rows, :, :length].float(),
            value=expected_caches[1][:rows, :, :length].float(), mask=mask, ends=slots + 1, scale=head_dim ** -0.5)
        step = torch.finfo(dtype).eps * expected.abs().clamp(min=1)
        ok = (ours.shape == (rows, heads, 1, head_dim) and bool(((ours - expected).abs() <= 2 * step).all())
              and all(bool(((a.float() - b.float()).abs() <= torch.finfo(dtype).eps * b.float().abs()).all())
                      for a, b in zip(ours_caches, expected_caches)))  # the interpreter truncates to bf16
        failures += not ok
        print(f"heads={heads} kv_heads={kv_heads} head_dim={head_dim} slices={slices} {dtype} repeat={repeat}:",
              "ok" if ok else f"max error {float((ours - expected).abs().max())}")
print("failures", failures)
"""


def test_kernels_equal_sdpa(tmp_path):
    pytest.importorskip("triton")
    output = run_child(INTERPRETED_KERNELS, tmp_path, interpret=True)
    assert output.count(": ok") == 8 and "failures 0" in output, output


def test_slices_fill_the_gpu_without_slices_shorter_than_a_step():
    from decode_attention import BLOCK_SLOTS, slices_for

    pytest.importorskip("triton")
    assert slices_for(pairs=32, length=4096, multiprocessors=132) == 17  # batch 1, 32 heads: 4 programs an SM
    assert slices_for(pairs=32, length=256, multiprocessors=132) == 256 // BLOCK_SLOTS
    assert slices_for(pairs=64 * 32, length=4096, multiprocessors=132) == 1  # a large batch fills the GPU alone


def test_cpu_writes_the_rotated_key_and_takes_sdpa_over_the_masked_slots_through_the_new_one():
    torch.manual_seed(0)
    query, key, value = torch.randn(2, 4, 16), torch.randn(2, 2, 16), torch.randn(2, 2, 16)
    angles = torch.tensor([[0.3], [1.1]]).expand(2, 16)
    cos, sin = torch.cos(angles), torch.sin(angles)
    key_cache, value_cache = torch.randn(2, 2, 10, 16), torch.randn(2, 2, 10, 16)
    before = key_cache.clone()
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, :3] = False
    slots = torch.tensor([9, 5])
    ours = step_attention(query=query, key=key, value=value, cos=cos, sin=sin, key_cache=key_cache,
                          value_cache=value_cache, mask=mask, slots=slots, scale=0.25)
    rotated = [torch.cat([part[..., :8] * cos[:, None, :8] - part[..., 8:] * sin[:, None, 8:],
                          part[..., 8:] * cos[:, None, 8:] + part[..., :8] * sin[:, None, :8]], dim=-1)
               for part in (query, key)]
    for row, slot in enumerate(slots.tolist()):
        torch.testing.assert_close(key_cache[row, :, slot], rotated[1][row])
        assert torch.equal(value_cache[row, :, slot], value[row])
        assert torch.equal(key_cache[row, :, slot + 1:], before[row, :, slot + 1:])
    groups = key_cache.repeat_interleave(2, dim=1), value_cache.repeat_interleave(2, dim=1)
    for row, attended in ((0, slice(0, 10)), (1, slice(3, 6))):
        expected = torch.softmax(rotated[0][row, :, None] @ groups[0][row, :, attended].transpose(-1, -2) * 0.25,
                                 -1) @ groups[1][row, :, attended]
        torch.testing.assert_close(ours[row], expected)


def test_arrival_counters_are_kept_for_captured_graphs_and_grow_without_being_replaced():
    """A captured CUDA graph holds the counters' address: a launch needing more counters gets a larger set added,
    and the earlier set stays alive (and zeroed) for the graphs that use it."""
    import decode_kernels

    device = torch.device("cpu")
    decode_kernels._ARRIVALS.pop(device, None)
    small = decode_kernels.arrival_counters(device, 8)
    assert small.dtype == torch.int32 and small.numel() == 8 and not small.any()
    assert decode_kernels.arrival_counters(device, 4) is small
    large = decode_kernels.arrival_counters(device, 64)
    assert large.numel() == 64 and large is not small
    held = decode_kernels._ARRIVALS[device]
    assert len(held) == 2 and held[0] is small and held[1] is large
    assert decode_kernels.arrival_counters(device, 8) is large
    decode_kernels._ARRIVALS.pop(device)
