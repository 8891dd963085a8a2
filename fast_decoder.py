"""A lean decoder for Llama-family language models (Llama, Mistral, Qwen2, SmolLM2), used by fast generation.

It runs the language model's own weights (no copies) without transformers' per-call machinery: its own KV cache (one
preallocated tensor per layer and batch/length bucket), the prompt attending only to itself, and on CUDA the
one-token step as ONE compiled layer function, called once per layer, with the whole step (embedding, every layer,
the head) captured in one CUDA graph per bucket. Compiling one layer instead of the unrolled model keeps compilation
to seconds; the graph removes the launch overhead that otherwise dominates a batch-1 step.

The numerics follow transformers' Llama code (RMSNorm in float32, rotary embedding from the model's own module,
softmax attention: SDPA for prompts, decode_attention.py's kernels in float32 for steps on CUDA), so greedy tokens equal
`generate`'s (tests/test_fast_generation.py).
"""

import functools
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

try:
    from .decode_attention import rotate, step_attention
    from .decode_kernels import (
        fuses_residual_norm, gated_matvec, matvec_residual_norm, one_row, residual_norm, rms_norm, stacked_matvec,
    )
    from .quantized_decode_kernels import PackedWeight, quantized_gated, quantized_product, quantized_residual_norm
    from .weight_quantization import QuantizedLinear
except ImportError:
    from decode_attention import rotate, step_attention
    from decode_kernels import (
        fuses_residual_norm, gated_matvec, matvec_residual_norm, one_row, residual_norm, rms_norm, stacked_matvec,
    )
    from quantized_decode_kernels import PackedWeight, quantized_gated, quantized_product, quantized_residual_norm
    from weight_quantization import QuantizedLinear

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2")


Projection = torch.Tensor | PackedWeight  # a plain weight, or a weight-only quantized one (--quantize)


class LayerWeights(NamedTuple):
    input_norm: torch.Tensor
    q: Projection
    k: Projection
    v: Projection
    q_bias: torch.Tensor | None
    k_bias: torch.Tensor | None
    v_bias: torch.Tensor | None
    o: Projection
    o_bias: torch.Tensor | None
    post_norm: torch.Tensor
    gate: Projection
    up: Projection
    down: Projection
    next_norm: torch.Tensor  # the norm of the layer's output: the next layer's input norm, or the model's final norm


@dataclass(frozen=True)
class LayerShape:
    heads: int
    kv_heads: int
    head_dim: int
    scaling: float
    eps: float


def projection(module: torch.nn.Module) -> Projection:
    """What the decoder reads of a projection: its weight, or its packed bytes and scales."""
    if isinstance(module, QuantizedLinear):
        return PackedWeight(module.qweight, module.scale, getattr(module, "offset", None))
    return module.weight


def project(hidden: torch.Tensor, weights: list[Projection]) -> torch.Tensor:
    """`hidden` times each weight, concatenated: one launch for weights of one kind (plain or quantized)."""
    if all(isinstance(weight, PackedWeight) for weight in weights):
        return quantized_product(hidden, weights)
    if not any(isinstance(weight, PackedWeight) for weight in weights):
        if one_row(hidden):
            return stacked_matvec(hidden, weights)
        # Several rows: cuBLAS in the compiled graph, where one weight's product needs no copy (the op's
        # concatenation made one) and the compiler fuses what follows.
        products = [F.linear(hidden, weight) for weight in weights]
        return products[0] if len(products) == 1 else torch.cat(products, dim=-1)
    return torch.cat([project(hidden, [weight]) for weight in weights], dim=-1)


def gated_product(hidden: torch.Tensor, gate: Projection, up: Projection) -> torch.Tensor:
    """`silu(hidden @ gate.T) * (hidden @ up.T)`, each product rounded to the input dtype as the unfused ops do."""
    plain = isinstance(gate, torch.Tensor) and isinstance(up, torch.Tensor)
    if one_row(hidden) and plain:
        return gated_matvec(hidden, gate, up)
    if one_row(hidden) and isinstance(gate, PackedWeight) and isinstance(up, PackedWeight):
        return quantized_gated(hidden, gate, up)  # the gate in the product's launch
    # several rows: the compiler fuses the gate into one elementwise kernel
    gate_out, up_out = (project(hidden, [gate]), project(hidden, [up])) if plain else (
        project(hidden, [gate, up]).chunk(2, dim=-1))
    return F.silu(gate_out) * up_out


def project_residual_norm(x: torch.Tensor, weight: Projection, *, bias: torch.Tensor | None, residual: torch.Tensor,
                          norm: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden, normed): hidden = residual + x @ weight.T (+ bias) and its RMSNorm. One row on the GPU: in the
    product's launch, whose last program adds and normalises (a launch fewer). Otherwise (several rows, the CPU, rows
    wider than one program holds): the product, then the add and norm, which the compiler fuses into one kernel."""
    if bias is None and fuses_residual_norm(x, residual, norm):
        if isinstance(weight, PackedWeight):
            return quantized_residual_norm(x, weight, residual=residual, norm=norm, eps=eps)
        return matvec_residual_norm(x, weight, residual=residual, norm=norm, eps=eps)
    product = project(x, [weight])
    return residual_norm(residual, product if bias is None else product + bias, norm=norm, eps=eps)


class GraphedCall:
    """`function(*inputs)` replayed from a CUDA graph captured on the first call. Later inputs are copied into the
    captured ones; the returned tensor is the graph's own output buffer, overwritten by the next replay."""

    def __init__(self, function, pool: tuple | None = None, updates: tuple[torch.Tensor, ...] = ()):
        """`pool`: a memory pool (torch.cuda.graph_pool_handle()) shared with other graphs replayed one at a time, so
        that their intermediate tensors take the memory of the largest alone; each one's output may then be
        overwritten by the next replay of any of them. `updates`: tensors the function changes in place (state kept
        from one call to the next), which its warm-up runs leave as they found them, as they leave the random
        number generator: the first call does what the later ones do."""
        self.function, self.graph, self.pool, self.updates = function, None, pool, updates

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.graph is None:
            self.inputs = [tensor.clone() for tensor in inputs]
            kept, generator_state = [tensor.clone() for tensor in self.updates], torch.cuda.get_rng_state()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up (compilation, kernel selection) outside the capture
                for _ in range(2):
                    self.function(*self.inputs)
            torch.cuda.current_stream().wait_stream(side)
            for tensor, value in zip(self.updates, kept):
                tensor.copy_(value)
            torch.cuda.set_rng_state(generator_state)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, pool=self.pool):
                self.output = self.function(*self.inputs)
        else:
            for captured, tensor in zip(self.inputs, inputs):
                captured.copy_(tensor)
        self.graph.replay()
        return self.output


def layer_forward(
    hidden: torch.Tensor,
    normed: torch.Tensor | None,
    cos: torch.Tensor,
    sin: torch.Tensor,
    weights: LayerWeights,
    key_cache: torch.Tensor,
    value_cache: torch.Tensor,
    rows: torch.Tensor,
    slots: torch.Tensor,
    mask: torch.Tensor,
    shape: LayerShape,
    attend_cache: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoder layer over (batch, length) new tokens, written into cache `rows` (batch,) at `slots` (batch,
    length). The new tokens attend to the whole cache (decoding: one token a row, the caches' first `batch` rows,
    which `key_cache` and `value_cache` are then cut to) or only to each other (prompts, whose rows start afresh);
    `mask` is boolean, True = attend. The layer takes its input `hidden` with the input norm of it, `normed` (None:
    made here, in the first layer), and returns its output the same way, normed by `weights.next_norm` (the next
    layer's input norm or the model's final norm): each residual add and the norm after it are done in the launch of
    the product before them for one row (`project_residual_norm`)."""
    batch, length, _ = hidden.shape
    if normed is None:
        normed = rms_norm(hidden, weights.input_norm, shape.eps)
    qkv = project(normed, [weights.q, weights.k, weights.v])
    if weights.q_bias is not None:
        qkv = qkv + torch.cat([weights.q_bias, weights.k_bias, weights.v_bias])
    query, key, value = qkv.split([shape.heads * shape.head_dim] + [shape.kv_heads * shape.head_dim] * 2, dim=-1)
    if attend_cache:  # one new token per row (the cache's first rows): rotated, written and attended in one launch
        attention = step_attention(
            query=query.view(batch, shape.heads, shape.head_dim), key=key.view(batch, shape.kv_heads, shape.head_dim),
            value=value.view(batch, shape.kv_heads, shape.head_dim), cos=cos[:, 0], sin=sin[:, 0],
            key_cache=key_cache, value_cache=value_cache, mask=mask[:, 0, 0], slots=slots[:, -1], scale=shape.scaling)
    else:
        query = query.view(batch, length, shape.heads, shape.head_dim)
        key = key.view(batch, length, shape.kv_heads, shape.head_dim)
        value = value.view(batch, length, shape.kv_heads, shape.head_dim)
        query, key = rotate(query.transpose(1, 2), cos, sin), rotate(key.transpose(1, 2), cos, sin)
        value = value.transpose(1, 2)
        key_cache[rows[:, None], :, slots] = key.transpose(1, 2)
        value_cache[rows[:, None], :, slots] = value.transpose(1, 2)
        groups = shape.heads // shape.kv_heads
        if groups > 1:
            key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
        attention = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=shape.scaling)
    hidden, normed = project_residual_norm(attention.transpose(1, 2).reshape(batch, length, -1), weights.o,
                                           bias=weights.o_bias, residual=hidden, norm=weights.post_norm, eps=shape.eps)
    return project_residual_norm(gated_product(normed, weights.gate, weights.up), weights.down, bias=None,
                                 residual=hidden, norm=weights.next_norm, eps=shape.eps)


def unsupported_reason(language_model) -> str | None:
    """Why `LlamaFamilyDecoder` cannot run this language model, or None when it can."""
    config = language_model.config
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        return f"model type {config.model_type!r} is not one of {SUPPORTED_MODEL_TYPES}"
    if config.hidden_act != "silu" or getattr(config, "mlp_bias", False):
        return "only SiLU-gated MLPs without bias are supported"
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return "sliding-window attention is not supported"
    rope_type = (getattr(config, "rope_parameters", None) or {}).get("rope_type", "default")
    if rope_type in ("dynamic", "longrope"):  # their frequencies change with the length, inside a captured graph
        return f"{rope_type!r} rotary scaling is not supported"
    projections = [module for layer in language_model.model.layers for module in (
        layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj, layer.self_attn.o_proj,
        layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj)]
    other_kinds = {type(module) for module in projections} - {torch.nn.Linear, QuantizedLinear}
    # A composite model quantized by from_pretrained carries the quantizer's flags on itself, not on its language
    # model: the layers' own package tells.
    if getattr(language_model, "is_quantized", False) or any(
            kind.__module__.split(".")[0] == "bitsandbytes" for kind in other_kinds):
        return ("bitsandbytes' quantized layers (load_in_4bit/8bit, NF4) have no fast-path kernels: load the bf16 "
                "weights with --quantize int4 or int8 (weight_quantization.py), which the fast path decodes")
    if other_kinds:  # e.g. unmerged LoRA layers, whose adapters this decoder would silently leave out
        return f"its projections include {qualified_names(other_kinds)} layers, not plain Linear ones (unmerged " \
               "adapters? merge them first: merge_and_unload)"
    # Plain Linear layers holding tensor subclasses: torchao's quantized weights (TorchAoConfig), sharded DTensors
    foreign_weights = {type(module.weight) for module in projections if type(module) is torch.nn.Linear} - {
        torch.nn.Parameter, torch.Tensor}
    if foreign_weights:
        return f"its projections' weights are {qualified_names(foreign_weights)} tensors, not plain ones (quantized " \
               "by another library? load the bf16 weights with --quantize int4 or int8, which the fast path decodes)"
    return None


def qualified_names(kinds: set[type]) -> str:
    """The classes' full names, sorted and comma-separated (messages that name what was found)."""
    return ", ".join(sorted(f"{kind.__module__}.{kind.__qualname__}" for kind in kinds))


class LlamaFamilyDecoder:
    """Prefill and one-token decode steps over a static cache of `cache_length` slots for `batch_size` rows. Each row
    keeps its own fill, so rows of different ages can decode together (continuous batching, continuous_batching.py):
    a prompt restarts its rows, and a step may run only the first rows and read only the first slots."""

    def __init__(self, language_model, batch_size: int, cache_length: int, layer=layer_forward):
        """`layer` is `layer_forward` or a compiled version of it."""
        reason = unsupported_reason(language_model)
        if reason:
            raise ValueError(f"the fast decoder cannot run this language model: {reason}")
        base = language_model.model
        attention = base.layers[0].self_attn
        config = language_model.config
        self.shape = LayerShape(
            heads=config.num_attention_heads, kv_heads=config.num_key_value_heads, head_dim=attention.head_dim,
            scaling=attention.scaling, eps=base.layers[0].input_layernorm.variance_epsilon,
        )
        self.layers = [
            LayerWeights(
                layer.input_layernorm.weight, projection(layer.self_attn.q_proj), projection(layer.self_attn.k_proj),
                projection(layer.self_attn.v_proj), layer.self_attn.q_proj.bias, layer.self_attn.k_proj.bias,
                layer.self_attn.v_proj.bias, projection(layer.self_attn.o_proj), layer.self_attn.o_proj.bias,
                layer.post_attention_layernorm.weight, projection(layer.mlp.gate_proj), projection(layer.mlp.up_proj),
                projection(layer.mlp.down_proj), following.input_layernorm.weight if following else base.norm.weight,
            )
            for layer, following in zip(base.layers, [*base.layers[1:], None])
        ]
        self.embed, self.rotary = base.embed_tokens, base.rotary_emb
        self.head = language_model.get_output_embeddings()
        weight = base.norm.weight
        self.batch_size, self.cache_length = batch_size, cache_length
        cache_shape = (batch_size, self.shape.kv_heads, cache_length, self.shape.head_dim)
        self.key_cache = [torch.zeros(cache_shape, dtype=weight.dtype, device=weight.device) for _ in self.layers]
        self.value_cache = [torch.zeros_like(cache) for cache in self.key_cache]
        self.filled = torch.zeros(batch_size, cache_length, dtype=torch.bool, device=weight.device)
        self.next_slot = torch.zeros(batch_size, dtype=torch.long, device=weight.device)
        self.holds = torch.zeros(batch_size, dtype=torch.long, device=weight.device)  # 1: the row holds a sequence
        self.bookkeeping = (self.filled, self.next_slot)  # what a step changes besides the caches' next slots
        self.layer = layer
        self.graphs: dict[tuple, GraphedCall] = {}
        # Prefills of many (rows, length) shapes run one at a time: their graphs share one memory pool.
        self.prefill_pool = torch.cuda.graph_pool_handle() if weight.is_cuda else None

    def run(self, key: tuple | None, function, *inputs: torch.Tensor) -> torch.Tensor:
        """`function(*inputs)`; on CUDA replayed from the graph captured for `key` on its first call (None: eager)."""
        if key is None or not self.filled.is_cuda:
            return function(*inputs)
        if key not in self.graphs:
            prefill = key[0] == "prefill"
            self.graphs[key] = GraphedCall(function, pool=self.prefill_pool if prefill else None,
                                           updates=() if prefill else self.bookkeeping)
        return self.graphs[key](*inputs)

    def _logits(self, normed: torch.Tensor) -> torch.Tensor:
        """The last layer's normed output (`layer_forward`) at each row's last position, through the head."""
        logits = stacked_matvec(normed[:, -1], [self.head.weight])
        return (logits if self.head.bias is None else logits + self.head.bias).float()

    def prefill(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor,
                rows: torch.Tensor | None = None, graphed: bool = True) -> torch.Tensor:
        """Writes the prompts into slots 0..length-1 of `rows` (default: the first rows), forgetting what those rows
        held, and returns each prompt's last logits (float32). On CUDA, when `graphed`, each (rows, length) gets a
        CUDA graph (warm-ups rewrite the same slots), so pad prompts to a few lengths; the cache slots need not equal
        the positions. Graphed logits are overwritten by the next graphed prefill of any shape (the prefill graphs share
        their memory)."""
        batch, length = inputs_embeds.shape[:2]
        rows = torch.arange(batch, device=inputs_embeds.device) if rows is None else rows
        self.filled[rows] = torch.nn.functional.pad(attention_mask.bool(), (0, self.cache_length - length))
        self.next_slot[rows] = length
        self.holds[rows] = 1
        return self.run(("prefill", batch, length) if graphed else None, self._prefill, inputs_embeds, positions, rows)

    def release(self, row: int) -> None:
        """Frees a row: it decodes nothing that matters until a prompt fills it again."""
        self.holds[row] = 0
        self.next_slot[row] = 0
        self.filled[row] = False

    def _prefill(self, inputs_embeds: torch.Tensor, positions: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        length = inputs_embeds.shape[1]
        filled = self.filled[rows, None, None, :length]
        causal = torch.ones(length, length, dtype=torch.bool, device=inputs_embeds.device).tril()
        # Padding rows attend to themselves, so their (unused) states stay finite and never poison a cache slot.
        mask = (causal & filled) | torch.eye(length, dtype=torch.bool, device=causal.device)
        slots = torch.arange(length, device=inputs_embeds.device).expand(len(rows), length)
        cos, sin = self.rotary(inputs_embeds, positions)
        hidden, normed = inputs_embeds, None
        for weights, key_cache, value_cache in zip(self.layers, self.key_cache, self.value_cache):
            hidden, normed = self.layer(hidden, normed, cos, sin, weights, key_cache, value_cache, rows, slots, mask,
                                        self.shape, False)
        return self._logits(normed)

    def _step(self, tokens: torch.Tensor, positions: torch.Tensor, slots: torch.Tensor, length: int) -> torch.Tensor:
        rows = len(tokens)
        hidden = self.embed(tokens[:, None])
        cos, sin = self.rotary(hidden, positions[:, None])
        mask = self.filled[:rows, None, None, :length]
        row_ids = torch.arange(rows, device=tokens.device)
        normed = None
        for weights, key_cache, value_cache in zip(self.layers, self.key_cache, self.value_cache):
            hidden, normed = self.layer(hidden, normed, cos, sin, weights, key_cache[:rows, :, :length],
                                        value_cache[:rows, :, :length], row_ids, slots[:, None], mask, self.shape,
                                        True)
        return self._logits(normed)

    def advance(self, tokens: torch.Tensor, positions: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Writes one token for each of the first len(tokens) rows (at its rotary `positions`) into the row's next
        slot and returns the next logits (float32, rows x vocab); attention reads the first `length` slots (default:
        all), which must include every row's next slot. Everything stays on the GPU: no host synchronisation. Eager
        (`step` replays it from a graph; fast_generation.py captures it with the token choice): changes only the
        tensors of `bookkeeping` and the caches' next slots."""
        rows, length = len(tokens), length or self.cache_length
        self.filled[:rows].scatter_(1, self.next_slot[:rows, None], True)
        logits = self._step(tokens, positions, self.next_slot[:rows], length)
        self.next_slot[:rows] += self.holds[:rows]
        return logits

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """`advance`, on CUDA replayed from a graph per (rows, length): the logits are the graph's own buffer,
        overwritten by the next step of as many rows."""
        length = length or self.cache_length
        return self.run(("step", len(tokens), length), functools.partial(self.advance, length=length), tokens,
                        positions)


__all__ = ["GraphedCall", "LlamaFamilyDecoder", "layer_forward", "unsupported_reason"]
