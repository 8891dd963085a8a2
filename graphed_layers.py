"""The LLM's decoder layers replayed from CUDA graphs while training: a layer's forward is one launch, its backward
another, where eager PyTorch launches ~120 kernels a layer one by one from Python.

Why: a LoRA micro-batch of 8 conversations (~2,250 tokens on the 7B shape) is ~90-130 ms of GPU work behind ~200-300
ms of host work launching ~3,900 kernels (benchmarks/RESULTS.md, "Four GPUs"): the host sets the pace, and under DDP
every step waits for the slowest rank's host. Replayed, such micro-batches train 28-39% faster on an H100 or H200
(RESULTS.md, "Decoder layers replayed from CUDA graphs"). How:

- A packed micro-batch of T tokens runs in a bucket of B >= T tokens (the next multiple of `bucket_tokens`), whose
  graphs are captured on its first micro-batch. Tokens T..B form one more example of their own (variable-length
  attention keeps it apart) whose outputs reach no loss, so they add exactly nothing to any gradient; example slots
  left over are empty.
- Layer i reads boundary buffer `hidden[i]` and writes `hidden[i + 1]`; its backward reads `grad[i + 1]` and writes
  `grad[i]`: consecutive layers pass nothing but a view.
- Every bucket's graphs share one memory pool and every bucket's boundary buffers are views of the same memory, so a
  bucket costs little more than its graphs (a bucket longer than all before it is captured afresh, and the shorter
  ones again after it, so that they reuse its memory). That is safe while each forward's backward comes before the
  next forward, as in training; the backward of a forward that has been replayed over raises instead of reading
  overwritten activations.
- The recording takes gradients for fresh leaves over the layer's input and trainable weights (the layer runs with
  them through `torch.func.functional_call`): the parameters' own gradient accumulators may have been made on the
  default stream (DDP keeps them), which a capture cannot make wait.
- Parameter gradients reach autograd in a fresh tensor every micro-batch. (torch's `make_graphed_callables` returns
  its graph's own buffers, which AccumulateGrad may keep as `.grad` for the next replay to overwrite:
  pytorch/pytorch#181723.) So gradient accumulation and DDP's per-parameter hooks work as in eager.

Every other call (evaluation, no grad, padded batches, gradient checkpointing, a KV cache) runs the layer as it is. On
the CPU, a "replay" runs the captured function again over the same buffers: the tests check the bookkeeping there.
"""

import time
import warnings
from collections import Counter
from functools import partial

import torch
from torch import nn
from torch.autograd.graph import get_gradient_edge

from fast_generation import padded_count, round_up
from packed_attention import PACKED_ATTENTION

# What a decoder layer of a transformers LLM is called with in a packed training forward (the Trainer's
# `num_items_in_batch` is the loss's, passed along to every layer); other arguments given a value send the call to the
# eager layer.
PACKED_LAYER_ARGUMENTS = {"attention_mask", "position_ids", "position_embeddings", "cu_seq_lens_q", "max_length_q",
                          "cache", "past_key_values", "use_cache", "num_items_in_batch"}
# Tokens a bucket's length is a multiple of: a micro-batch is padded by fewer than this many, and a run captures one
# set of graphs per bucket it meets.
BUCKET_TOKENS = 256
WARMUP_RUNS = 2  # eager forward and backward passes before capture: Triton compilation, cuBLAS workspaces


def _record(function, pool: tuple | None):
    """`function` as a zero-argument callable that replays it: a CUDA graph captured in `pool`, or (pool None, the CPU)
    the function itself, which reads and writes the same buffers as the graph would."""
    if pool is None:
        return function
    graph = torch.cuda.CUDAGraph()
    # thread_local: the data loader's pin-memory thread may allocate page-locked memory during the capture.
    with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
        function()
    return graph.replay


def same_memory(view: torch.Tensor, buffer: torch.Tensor) -> bool:
    """Whether `view` is the start of `buffer` laid out as it is: what one layer hands the next, needing no copy."""
    return view.data_ptr() == buffer.data_ptr() and view.stride() == buffer.stride()


class FlatGradients:
    """One layer's parameter gradients in one buffer per dtype: written by the backward graph, handed to autograd as
    views of a fresh copy (one copy kernel per dtype, not one per parameter)."""

    def __init__(self, parameters: list[nn.Parameter]):
        self.shapes = [parameter.shape for parameter in parameters]
        self.dtypes = [parameter.dtype for parameter in parameters]
        self.buffers = {dtype: parameters[0].new_empty(sum(p.numel() for p in parameters if p.dtype == dtype),
                                                       dtype=dtype)
                        for dtype in dict.fromkeys(self.dtypes)}

    def write(self, gradients: tuple[torch.Tensor, ...]) -> None:
        for dtype, buffer in self.buffers.items():
            torch.cat([g.reshape(-1) for g, d in zip(gradients, self.dtypes) if d == dtype], out=buffer)

    def fresh(self) -> list[torch.Tensor]:
        copies = {dtype: buffer.clone() for dtype, buffer in self.buffers.items()}
        offsets = dict.fromkeys(copies, 0)
        gradients = []
        for shape, dtype in zip(self.shapes, self.dtypes):
            size = shape.numel()
            gradients.append(copies[dtype][offsets[dtype]:offsets[dtype] + size].view(shape))
            offsets[dtype] += size
        return gradients


class Bucket:
    """Every layer's graphs for packed micro-batches of up to `tokens` tokens and `slots` examples (the padding's own
    example included). The boundary buffers and the gradient buffers are the owner's, shared by all its buckets."""

    def __init__(self, *, run_layer, trainable: list[list[tuple[str, nn.Parameter]]],
                 flat_gradients: list[FlatGradients | None], boundaries: tuple[list[torch.Tensor], list[torch.Tensor]],
                 slots: int, hidden: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor],
                 cu_seq_lens: torch.Tensor, pool: tuple | None, warm_up: bool):
        """Captured with the micro-batch that opens it (`hidden`, `position_embeddings`, `cu_seq_lens`) loaded, after
        eager warm-up runs if `warm_up` (the pool's first bucket: later ones find the kernels compiled, and their
        warm-up's activations would not fit beside the pool's). `run_layer(index, hidden, weights, **kwargs)` runs a
        layer's own forward with `weights` (by name) in place of its trainable parameters `trainable[index]`."""
        self.run_layer, self.trainable, self.flat_gradients = run_layer, trainable, flat_gradients
        self.hidden, self.grad = boundaries
        self.tokens = tokens = self.hidden[0].shape[1]
        self.cos, self.sin = (part.new_zeros((1, tokens, *part.shape[2:])) for part in position_embeddings)
        self.cu_seq_lens = torch.full((slots + 1,), tokens, dtype=torch.int32, device=hidden.device)
        self.cu_seq_lens[0] = 0
        # Per layer, while recording: its output's autograd edge and the leaves its gradients are taken for.
        self.live: list[tuple | None] = [None] * len(trainable)
        self.length = 0  # the tokens of the micro-batch loaded last
        self.load(hidden, position_embeddings, cu_seq_lens)
        self.record(pool, warm_up)

    def run_forward(self, index: int) -> None:
        # Fresh leaves over the same memory: their gradient accumulators are made on the capturing stream.
        hidden = self.hidden[index].detach().requires_grad_()
        weights = {name: parameter.detach().requires_grad_() for name, parameter in self.trainable[index]}
        with torch.enable_grad():  # a CPU replay runs inside the autograd function's forward, where grad is off
            output = self.run_layer(index, hidden, weights, attention_mask=None,
                                    position_embeddings=(self.cos, self.sin), cu_seq_lens_q=self.cu_seq_lens,
                                    max_length_q=self.tokens)
        with torch.no_grad():
            self.hidden[index + 1].copy_(output)
        # Only the output's autograd edge is kept, so that the pool reuses its memory (a copy of the boundary buffer).
        self.live[index] = (get_gradient_edge(output), [hidden, *weights.values()])

    def run_backward(self, index: int) -> None:
        output, leaves = self.live[index]
        gradients = torch.autograd.grad(output, leaves, self.grad[index + 1], materialize_grads=True)
        self.live[index] = None  # its saved activations go back to the pool
        with torch.no_grad():
            self.grad[index].copy_(gradients[0])
            if self.flat_gradients[index] is not None:
                self.flat_gradients[index].write(gradients[1:])

    def record(self, pool: tuple | None, warm_up: bool) -> None:
        """Capture (after warm-up runs) every layer's forward in order and backward in reverse, the order in which
        they replay, so that the shared pool hands a backward the memory of activations already consumed."""
        layers = range(len(self.trainable))
        device = self.hidden[0].device.type
        # Autocast's cache of cast weights would make a capture reuse a cast made before it (weights that then never
        # change in the graph); off while recording.
        autocast = torch.autocast(device, dtype=torch.get_autocast_dtype(device), cache_enabled=False,
                                  enabled=torch.is_autocast_enabled(device))
        with autocast:
            if pool is not None and warm_up:
                torch.cuda.synchronize()
                with torch.cuda.stream(torch.cuda.Stream()):
                    for _ in range(WARMUP_RUNS):
                        for index in layers:
                            self.run_forward(index)
                        for index in reversed(layers):
                            self.run_backward(index)
                torch.cuda.synchronize()
            self.replay_forward = [_record(partial(self.run_forward, index), pool) for index in layers]
            backwards = [_record(partial(self.run_backward, index), pool) for index in reversed(layers)]
        self.replay_backward = backwards[::-1]

    def load(self, hidden: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor],
             cu_seq_lens: torch.Tensor) -> None:
        """A micro-batch's inputs into the first layer's buffers; the padding keeps what it held (a finite hidden
        state of an earlier micro-batch, or zeros), which reaches no loss."""
        length = hidden.shape[1]
        with torch.no_grad():
            self.hidden[0][:, :length].copy_(hidden)
            self.cos[:, :length].copy_(position_embeddings[0])
            self.sin[:, :length].copy_(position_embeddings[1])
            self.cu_seq_lens[:len(cu_seq_lens)].copy_(cu_seq_lens)
            self.cu_seq_lens[len(cu_seq_lens):].fill_(self.tokens)
        self.length = length

    def forward(self, index: int, hidden: torch.Tensor) -> torch.Tensor:
        """Replay layer `index` on `hidden` (the previous layer's output view, or loaded by `load`); returns a view of
        its output buffer (a copy for the last layer, which eager code after the layers may keep)."""
        source = self.hidden[index]
        if index > 0 and not same_memory(hidden, source):
            with torch.no_grad():  # changed between layers by eager code
                source[:, :self.length].copy_(hidden)
        self.replay_forward[index]()
        output = self.hidden[index + 1].detach()[:, :self.length]
        return output.clone() if index == len(self.trainable) - 1 else output

    def backward(self, index: int, grad_output: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        target = self.grad[index + 1]
        if not same_memory(grad_output, target):
            with torch.no_grad():  # from eager code (the last layer), or summed with another use of the output
                target[:, :self.length].copy_(grad_output)
                target[:, self.length:].zero_()  # the padding's outputs reach no loss
        self.replay_backward[index]()
        grad_input = self.grad[index].detach()[:, :self.length]
        flat = self.flat_gradients[index]
        return (grad_input.clone() if index == 0 else grad_input), (flat.fresh() if flat is not None else [])


class _LayerReplay(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, graphs: "GraphedDecoderLayers", bucket: Bucket, index: int, *parameters):
        ctx.graphs, ctx.bucket, ctx.index, ctx.generation = graphs, bucket, index, graphs.generation
        return bucket.forward(index, hidden)

    @staticmethod
    def backward(ctx, grad_output):
        if ctx.generation != ctx.graphs.generation:
            raise RuntimeError(
                "Graphed decoder layers: this backward belongs to a forward whose activations a later forward has "
                "overwritten (each forward's backward must come before the next forward); train with "
                "--graphed_layers false to run such a loop")
        grad_input, parameter_grads = ctx.bucket.backward(ctx.index, grad_output)
        return grad_input, None, None, None, *parameter_grads


class GraphedDecoderLayers:
    """Installs graph replay on `layers` (a transformers LLM's decoder layers, after LoRA is added): each layer's
    `forward` is replaced on the instance (the state dict and module tree stay as they are); `remove()` restores it.
    `eager_calls` counts the forwards that ran eagerly, by reason; `buckets` holds the captured shapes."""

    def __init__(self, layers: list[nn.Module], bucket_tokens: int = BUCKET_TOKENS, max_buckets: int = 16,
                 strict: bool = True):
        """`strict` False: a capture that fails (an operation a CUDA graph cannot hold, in some model or library
        version) is reported once as a warning and every later call runs eagerly; True: it raises."""
        if bucket_tokens < 1 or max_buckets < 1:
            raise ValueError(f"bucket_tokens and max_buckets must be positive, got {bucket_tokens}, {max_buckets}")
        self.layers, self.bucket_tokens, self.max_buckets = list(layers), bucket_tokens, max_buckets
        self.strict = strict
        self.failure: str | None = None  # why capturing failed, when not strict
        self.original_forwards = [layer.forward for layer in self.layers]
        self.buckets: dict[tuple, Bucket] = {}
        self.pool = None
        self.storage: list[torch.Tensor] = []  # the boundary buffers' memory, shared by every bucket
        self.signature: tuple | None = None  # the layers' weights (address, trains) the buckets were captured with
        # Where each weight sits: reading these is a tenth of the time of walking the layers' modules (1.2 ms a
        # forward for the 7B shape's 32 LoRA layers, on a host that launches little else then).
        self.weight_slots = [(module._parameters, name) for layer in self.layers for module in layer.modules()
                             for name in module._parameters]
        self.trainable: list[list[tuple[str, nn.Parameter]]] = []  # per layer, by name within the layer
        self.flat_gradients: list[FlatGradients | None] = []
        self.generation = 0
        self.bucket: Bucket | None = None  # the bucket of the forward in progress
        self.recording = False  # a layer call is the recording's own
        self.eager_calls: Counter = Counter()
        self.replayed_forwards = 0
        self.capture_seconds = 0.0
        for index, layer in enumerate(self.layers):
            layer.forward = partial(self.layer_forward, index)

    def remove(self) -> None:
        for layer in self.layers:
            del layer.forward
        self.drop_buckets()

    def eager_reason(self, index: int, hidden: torch.Tensor, args: tuple, kwargs: dict) -> str | None:
        """Why this call must run eagerly, or None."""
        layer = self.layers[index]
        if self.failure:
            return self.failure
        if not (layer.training and torch.is_grad_enabled()):
            return "not training"
        if getattr(layer, "gradient_checkpointing", False):
            return "gradient checkpointing"
        if args or kwargs.get("cu_seq_lens_q") is None or hidden.dim() != 3 or hidden.shape[0] != 1:
            return "not a packed batch"
        if kwargs.get("cache") is not None or kwargs.get("past_key_values") is not None or kwargs.get("use_cache"):
            return "a KV cache"
        cos, _ = kwargs.get("position_embeddings") or (None, None)
        if cos is None or cos.dim() != 3 or cos.shape[:2] != hidden.shape[:2]:
            return "no rotary position embeddings per token"
        others = sorted(name for name, value in kwargs.items()
                        if name not in PACKED_LAYER_ARGUMENTS and value is not None and value is not False)
        if others:
            return f"arguments {', '.join(others)}"
        if index > 0 and (self.bucket is None or self.bucket.length != hidden.shape[1]):
            return "the first layer ran eagerly"
        return None

    def drop_buckets(self) -> None:
        """Forget every bucket, its graphs and pool (nothing else holds them) and the boundary memory."""
        self.buckets.clear()
        self.bucket = None
        self.storage = []
        if self.pool is not None:
            self.pool = None
            torch.cuda.empty_cache()  # the pool's memory goes back to the device, for the next warm-up

    def boundaries(self, hidden: torch.Tensor, tokens: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """A bucket's boundary buffers: `tokens`-long views of memory that every bucket shares (buckets never replay
        at once), the hidden ones as leaves that need their gradient. A bucket longer than every one before drops them
        all with their pool: captured first, the longest leaves memory that the shorter ones, captured again after it,
        reuse. (Captured in arrival order, each after an eager warm-up beside the pool, micro-batches of 32 on the 7B
        shape reserved 106 GiB for 66 allocated, and ran out of an 80 GB card's memory.)"""
        old = self.storage[0] if self.storage else None
        if old is None or old.shape[1] < tokens or (old.dtype, old.device, old.shape[2:]) != (
                hidden.dtype, hidden.device, hidden.shape[2:]):
            self.drop_buckets()
            self.storage = [hidden.new_zeros((1, tokens, *hidden.shape[2:])) for _ in range(2 * len(self.layers) + 2)]
        views = [memory[:, :tokens] for memory in self.storage]
        return [view.detach().requires_grad_() for view in views[:len(self.layers) + 1]], views[len(self.layers) + 1:]

    def bucket_for(self, hidden: torch.Tensor, kwargs: dict) -> Bucket | None:
        """The bucket of this micro-batch, captured if new (None: `max_buckets` are held and it is not the longest).
        Every bucket is dropped when the layers' weights have moved, been replaced, or started or stopped training
        (graphs hold their addresses); modules added to the layers after installing are not seen."""
        signature = tuple(None if (weight := weights[name]) is None else (weight.data_ptr(), weight.requires_grad)
                          for weights, name in self.weight_slots)
        if signature != self.signature:
            self.drop_buckets()
            self.signature = signature
            self.trainable = [[(name, p) for name, p in layer.named_parameters() if p.requires_grad]
                              for layer in self.layers]
            self.flat_gradients = [FlatGradients([p for _, p in group]) if group else None for group in self.trainable]
        tokens = round_up(hidden.shape[1], self.bucket_tokens)
        slots = padded_count(len(kwargs["cu_seq_lens_q"]))  # the examples and the padding's own
        device = hidden.device.type
        key = (tokens, slots, hidden.dtype, kwargs["position_embeddings"][0].dtype, torch.is_autocast_enabled(device),
               torch.get_autocast_dtype(device))
        if key not in self.buckets:
            if len(self.buckets) >= self.max_buckets and self.storage[0].shape[1] >= tokens:
                return None
            boundaries = self.boundaries(hidden, tokens)
            warm_up = self.pool is None
            if hidden.is_cuda and warm_up:
                self.pool = torch.cuda.graph_pool_handle()
            start = time.perf_counter()
            self.buckets[key] = Bucket(
                run_layer=self.run_layer, trainable=self.trainable, flat_gradients=self.flat_gradients,
                boundaries=boundaries, slots=slots, hidden=hidden, position_embeddings=kwargs["position_embeddings"],
                cu_seq_lens=kwargs["cu_seq_lens_q"], pool=self.pool, warm_up=warm_up)
            self.capture_seconds += time.perf_counter() - start
        return self.buckets[key]

    def layer_forward(self, index: int, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.recording:
            return self.original_forwards[index](hidden_states, *args, **kwargs)
        reason = self.eager_reason(index, hidden_states, args, kwargs)
        if reason is None and index == 0:
            reason = self.start_forward(hidden_states, kwargs)
        if reason is not None:
            if index == 0:
                self.bucket = None
                self.eager_calls[reason] += 1
            return self.original_forwards[index](hidden_states, *args, **kwargs)
        return _LayerReplay.apply(hidden_states, self, self.bucket, index, *(p for _, p in self.trainable[index]))

    def start_forward(self, hidden: torch.Tensor, kwargs: dict) -> str | None:
        """Load a forward's first-layer inputs into its bucket (captured if new); returns why the forward must run
        eagerly instead, or None."""
        try:
            self.bucket = self.bucket_for(hidden, kwargs)
        except Exception as error:  # whatever the capture met: the eager layers raise again if the fault is theirs
            if self.strict:
                raise
            self.drop_buckets()
            self.failure = f"capture failed: {type(error).__name__}: {str(error).splitlines()[0]}"
            warnings.warn(f"Graphed decoder layers: {self.failure}; the layers run eagerly from now on")
            return self.failure
        if self.bucket is None:
            return f"more than {self.max_buckets} packed shapes"
        self.bucket.load(hidden, kwargs["position_embeddings"], kwargs["cu_seq_lens_q"])
        self.generation += 1
        self.replayed_forwards += 1
        return None

    def run_layer(self, index: int, hidden: torch.Tensor, weights: dict[str, torch.Tensor], **kwargs) -> torch.Tensor:
        """Layer `index`'s own forward with `weights` (by name) in place of its trainable parameters, for recording."""
        self.recording = True
        try:
            return torch.func.functional_call(self.layers[index], weights, (hidden,), kwargs, strict=False)
        finally:
            self.recording = False

    def summary(self) -> str:
        shapes = ", ".join(f"{key[0]} tokens x {key[1]} examples" for key in self.buckets) or "none"
        eager = ", ".join(f"{reason}: {count}" for reason, count in self.eager_calls.items()) or "none"
        return (f"graphed decoder layers: {self.replayed_forwards} forwards replayed (buckets: {shapes}; captured in "
                f"{self.capture_seconds:.1f} s); eager: {eager}")


def graph_decoder_layers(language_model: nn.Module, *, bucket_tokens: int = BUCKET_TOKENS, max_buckets: int = 16,
                         strict: bool = True) -> GraphedDecoderLayers:
    """Graph replay on the decoder layers of `language_model` (a transformers causal LM with packed attention)."""
    if language_model.config._attn_implementation != PACKED_ATTENTION:
        raise ValueError("Graphed decoder layers need packed batches: enable packed attention first (--packing)")
    return GraphedDecoderLayers(language_model.get_decoder().layers, bucket_tokens=bucket_tokens,
                                max_buckets=max_buckets, strict=strict)
