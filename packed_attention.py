"""Attention for padding-free training batches: several examples packed into one row, none attending to another.

The training collator (`training_data.NextGPTCollator`, `pack=True`) concatenates a micro-batch's examples into one
row, restarts `position_ids` at 0 for each (so rotary positions are those of the example alone) and marks where each
one starts in `cu_seq_lens_q` (cumulative lengths, transformers' `DataCollatorWithFlattening` convention). Here, each
example attends causally to itself only: torch's FlashAttention variable-length kernel on CUDA, one causal SDPA call
per example elsewhere. Batches without `cu_seq_lens_q` (padded evaluation, generation) go to transformers' SDPA with
their usual mask, so a model keeps working for everything else while packing is switched on.
"""

import inspect

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

PACKED_ATTENTION = "nextgpt_packed"

try:
    from torch.nn.attention.varlen import varlen_attn
except ImportError:  # torch < 2.10: the per-example SDPA path serves everywhere
    varlen_attn = None
VARLEN_DEVICE = "cuda"  # where torch's FlashAttention variable-length kernel runs
# torch 2.10 spells causal masking `is_causal=True`, later versions `window_size=(-1, 0)`.
VARLEN_CAUSAL = {} if varlen_attn is None else (
    {"window_size": (-1, 0)} if "window_size" in inspect.signature(varlen_attn).parameters else {"is_causal": True}
)


def packed_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    cu_seq_lens_q: torch.Tensor | None = None,
    max_length_q: int | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention interface: query (1, heads, tokens, dim), key/value (1, kv_heads, tokens, dim) ->
    (1, tokens, heads, dim). `cu_seq_lens_q` (num_examples + 1,) gives each packed example's span."""
    if cu_seq_lens_q is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    if query.shape[0] != 1:
        raise ValueError(f"A packed batch is one row of examples; got {query.shape[0]} rows")
    if dropout:
        raise ValueError("Packed attention has no attention dropout; set the LLM's attention_dropout to 0")
    groups = query.shape[1] // key.shape[1]  # grouped-query attention: each key/value head serves `groups` queries
    query, key, value = (tensor[0].transpose(0, 1) for tensor in (query, key, value))  # (tokens, heads, dim)
    if groups > 1:
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    dtype = varlen_dtype(query)
    if dtype is not None:
        output = varlen_attn(*(tensor.to(dtype) for tensor in (query, key, value)), cu_seq_lens_q, cu_seq_lens_q,
                             max_length_q, max_length_q, scale=scaling, **VARLEN_CAUSAL)
    else:
        bounds = cu_seq_lens_q.tolist()
        output = torch.cat([
            F.scaled_dot_product_attention(
                *(tensor[start:end].transpose(0, 1) for tensor in (query, key, value)), is_causal=True, scale=scaling
            ).transpose(0, 1)
            for start, end in zip(bounds, bounds[1:])
        ])
    return output.unsqueeze(0), None


def varlen_dtype(query: torch.Tensor) -> torch.dtype | None:
    """The half precision the variable-length kernel runs this query in, or None where it cannot run (CPU, float32
    without autocast, torch < 2.10). Under autocast a float32 model's query arrives in float32 (the rotary embedding
    multiplies it by float32 cos/sin) although SDPA would run it in autocast's dtype: so does the kernel, rather than
    falling back to one SDPA call per example and layer."""
    device = query.device.type
    if varlen_attn is None or device != VARLEN_DEVICE:
        return None
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else query.dtype
    return dtype if dtype in (torch.float16, torch.bfloat16) else None


AttentionInterface.register(PACKED_ATTENTION, packed_attention)
# Padded batches get SDPA's mask; packed ones skip mask building (`skip_mask_for_packed_batches`).
AttentionMaskInterface.register(PACKED_ATTENTION, sdpa_mask)


def enable_packed_attention(language_model: PreTrainedModel) -> None:
    """Switch `language_model` to packed attention. The choice is not saved with the model (config.json holds no
    attention implementation), and unpacked batches still get SDPA."""
    language_model.set_attn_implementation(PACKED_ATTENTION)
    if getattr(language_model, "packed_mask_hook", None) is None:
        language_model.packed_mask_hook = language_model.register_forward_pre_hook(
            skip_mask_for_packed_batches, with_kwargs=True)


def skip_mask_for_packed_batches(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """A packed batch needs no attention mask (`cu_seq_lens_q` keeps its examples apart), but transformers would build
    a tokens x tokens one, after reading the positions off the GPU to find where each example starts: a wait for the
    GPU in every forward. It passes a 4D mask through untouched, so an empty one stands in."""
    if kwargs.get("cu_seq_lens_q") is not None and kwargs.get("attention_mask") is None:
        reference = next(value for value in (kwargs.get("inputs_embeds"), kwargs.get("input_ids"), *args)
                         if isinstance(value, torch.Tensor))
        kwargs["attention_mask"] = torch.empty((1, 1, 0, 0), dtype=torch.bool, device=reference.device)
    return args, kwargs
