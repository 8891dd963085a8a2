"""Weight-only quantization of the language model's projections (q/k/v/o, gate/up/down), applied at load time.

- int8: one scale per output row, symmetric: `weight ~ q * scale`, q in [-127, 127].
- int4: groups of `group_size` consecutive inputs per output row, each with its own scale and offset (asymmetric, so a
  group's range is used fully): `weight ~ q * scale + offset`, q in [0, 15], eight codes per int32 word. Word j holds
  inputs 8j..8j+7, the even ones in its low half and the odd ones in its high half: bits 4n..4n+3 hold input 8j + 2n
  and bits 16 + 4n..19 + 4n input 8j + 2n + 1 (n = 0..3). One shift and one mask of a word then give the codes of two
  neighbouring inputs side by side in two 16-bit halves, the pairs the decode kernels multiply two at a time, and the
  columns of a dequantized tile come out in the input's own order.
Scales and offsets are stored group-major, (groups, rows): the decode kernels read one group's values for many rows
at once, contiguously.

Activations stay in the compute dtype. `QuantizedLinear` dequantizes its weight for each product (`generate` and
other plain forwards: right everywhere, but it reads more bytes than the bf16 weight would); the fast path reads the
packed bytes directly with quantized_decode_kernels.py, which is where the speed comes from. The embeddings, the head
and the towers are left as they are.
"""

import torch
import torch.nn.functional as F
from torch import nn

QUANTIZE_BITS = {"int8": 8, "int4": 4}  # the names the tools' --quantize takes
QUANTIZED_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# A multiple of 8 (a word's codes) that tiles every width of Llama-2-7B (4096, 11008) and SmolLM2-135M (576, 1536).
INT4_GROUP_SIZE = 64


class QuantizedLinear(nn.Module):
    """A bias-free Linear whose weight is stored as int8 rows or int4 groups (see the module docstring)."""

    def __init__(self, weight: torch.Tensor, bits: int, group_size: int = INT4_GROUP_SIZE):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.bits, self.group_size = bits, group_size if bits == 4 else self.in_features
        quantized = quantize_int8(weight) if bits == 8 else quantize_int4(weight, group_size)
        for name, tensor in quantized.items():
            self.register_buffer(name, tensor)
        self.register_parameter("bias", None)  # as a bias-free nn.Linear reads

    def dequantized_weight(self) -> torch.Tensor:
        return dequantize(bits=self.bits, group_size=self.group_size, **dict(self.named_buffers()))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden_states, self.dequantized_weight().to(hidden_states.dtype))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}, " \
               f"group_size={self.group_size}"


def quantize_int8(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """{"qweight": int8 (N, K), "scale": (1, N) in the weight's dtype}."""
    scale = weight.float().abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127
    qweight = torch.round(weight.float() / scale).clamp(-127, 127).to(torch.int8)
    return {"qweight": qweight, "scale": scale.to(weight.dtype).T.contiguous()}


def quantize_int4(weight: torch.Tensor, group_size: int = INT4_GROUP_SIZE) -> dict[str, torch.Tensor]:
    """{"qweight": int32 (N, K / 8), "scale" and "offset": (K / group_size, N) in the weight's dtype}."""
    rows, columns = weight.shape
    if group_size % 8:
        raise ValueError(f"int4 groups are whole words of 8 codes, got groups of {group_size}")
    if columns % group_size:
        raise ValueError(f"int4 groups of {group_size} do not tile rows of {columns} inputs")
    groups = weight.float().view(rows, columns // group_size, group_size)
    low, high = groups.amin(dim=-1, keepdim=True), groups.amax(dim=-1, keepdim=True)
    # Stored in the weight's dtype, rounded outwards (offset down, scale up) so that the 16 levels still span the
    # group; the codes are then chosen against the stored values, the ones the product will use.
    offset = stored_rounded(low, weight.dtype, towards=-torch.inf)
    scale = stored_rounded(((high - offset.float()) / 15).clamp(min=1e-8), weight.dtype, towards=torch.inf)
    scale = torch.where(offset.float() + 15 * scale.float() < high, torch.nextafter(scale, scale.new_tensor(torch.inf)),
                        scale)
    codes = torch.round((groups - offset.float()) / scale.float()).clamp(0, 15).to(torch.int64)
    words = (codes.view(rows, columns // 8, 8) << word_shifts(weight.device)).sum(dim=-1)
    packed = torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)  # the same 32 bits, signed
    return {"qweight": packed, "scale": scale.squeeze(-1).T.contiguous(), "offset": offset.squeeze(-1).T.contiguous()}


def word_shifts(device: torch.device | str) -> torch.Tensor:
    """Where each of a word's 8 inputs sits, in bits: input 2n at 4n, input 2n + 1 at 16 + 4n."""
    return torch.tensor([0, 16, 4, 20, 8, 24, 12, 28], device=device)


def stored_rounded(values: torch.Tensor, dtype: torch.dtype, towards: float) -> torch.Tensor:
    """`values` in `dtype`, moved one step towards `towards` where rounding went the other way."""
    stored = values.to(dtype)
    wrong_way = stored.float() > values if towards < 0 else stored.float() < values
    return torch.where(wrong_way, torch.nextafter(stored, stored.new_tensor(towards)), stored)


def dequantize(*, qweight: torch.Tensor, scale: torch.Tensor, bits: int, group_size: int,
               offset: torch.Tensor | None = None) -> torch.Tensor:
    """The (N, K) weight the stored form stands for, in the scale's dtype (float32 arithmetic)."""
    if bits == 8:
        return (qweight.float() * scale.float().T).to(scale.dtype)
    rows, columns = qweight.shape[0], qweight.shape[1] * 8
    codes = (qweight.unsqueeze(-1) >> word_shifts(qweight.device)) & 0xF
    groups = codes.float().view(rows, columns // group_size, group_size)
    weight = groups * scale.float().T.unsqueeze(-1) + offset.float().T.unsqueeze(-1)
    return weight.view(rows, columns).to(scale.dtype)


def quantize_language_model(language_model: nn.Module, bits: int, group_size: int = INT4_GROUP_SIZE) -> nn.Module:
    """Replaces every bias-free projection of the decoder layers (QUANTIZED_PROJECTIONS) by a QuantizedLinear, in
    place as torchao's `quantize_` does, and returns the model. bits: 8 or 4."""
    if bits not in (4, 8):
        raise ValueError(f"weight-only quantization takes 8 or 4 bits, got {bits}")
    targets = [(module, name, child) for module in language_model.modules() for name, child in module.named_children()
               if name in QUANTIZED_PROJECTIONS and type(child) is nn.Linear and child.bias is None]
    untiled = sorted({child.in_features for _, _, child in targets if child.in_features % group_size})
    if bits == 4 and untiled:
        raise ValueError(f"int4 groups of {group_size} do not tile these projections' inputs ({untiled})")
    for module, name, child in targets:
        setattr(module, name, QuantizedLinear(child.weight.detach(), bits, group_size))
    return language_model


def quantize_named(model: nn.Module, name: str | None) -> nn.Module:
    """A NextGPT with its language model quantized as `--quantize NAME` says (None: unchanged); returns the model."""
    if name is not None:
        quantize_language_model(model.language_model, QUANTIZE_BITS[name])
    return model


__all__ = ["QuantizedLinear", "quantize_language_model", "quantize_int8", "quantize_int4", "dequantize"]
