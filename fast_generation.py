"""Fast generation for NextGPT: images are encoded once, in the prefill; the lean Llama-family decoder
(fast_decoder.py) fills its own preallocated KV cache and decodes with Triton matrix-vector kernels
(decode_kernels.py). On CUDA the tower, the prefill and each token (the decode step, the token's choice and its
bookkeeping: TokenLoop) are replayed from CUDA graphs, and the host never waits for the GPU between tokens (unless a
streamer or stop strings need each token).
Greedy or sampled (temperature, top-p), batch sizes 1 to 32, EOS and stop strings handled per sequence.

Greedy output equals `model.generate(..., do_sample=False)` token for token (tests/test_fast_generation.py).
`benchmarks/bench_generate.py` measures it against `generate` with dynamic and static caches.
"""

import inspect

import torch

try:
    from .fast_decoder import GraphedCall, LlamaFamilyDecoder, layer_forward, unsupported_reason
except ImportError:
    from fast_decoder import GraphedCall, LlamaFamilyDecoder, layer_forward, unsupported_reason

CACHE_LENGTH_STEP = 256  # cache lengths are rounded up to this, so a few caches and graphs serve every request
PROMPT_LENGTH_STEP = 32
STOP_STRING_TOKENS = 8  # a stop string is looked for in the text of this many last tokens
FINISHED_CHECK_INTERVAL = 16
MAX_DECODERS = 4  # (batch size, cache length) buckets kept with their caches and graphs; the oldest goes first
RECOMPILE_LIMIT = 64  # batch sizes, lengths and dtypes each may add a compilation of the one layer function


class FastGenerator:
    """Holds one decoder (KV cache and CUDA graph) per (batch size, cache length) bucket."""

    def __init__(self, model, compile_step: bool | None = None):
        reason = self.unsupported_reason(model)
        if reason:
            raise ValueError(f"the fast generation path cannot run this model: {reason}; use generate()")
        self.model = model
        self.compile_step = model.device.type == "cuda" if compile_step is None else compile_step
        # One compiled layer serves every layer and bucket (shapes that change become dynamic after the first); the
        # decode step's CUDA graph is our own (fast_decoder.py), so no "reduce-overhead" mode.
        self.compiled = torch.compile(layer_forward, fullgraph=True) if self.compile_step else None
        self.layer = self._compiled_layer if self.compile_step else layer_forward
        self.decoders: dict[tuple[int, int], LlamaFamilyDecoder] = {}
        self.loops: dict[tuple, TokenLoop] = {}  # per decoder, count of EOS ids and sampling kind
        self.tower_graphs: dict[tuple, GraphedCall] = {}

    def _compiled_layer(self, *args) -> torch.Tensor:
        # dynamo's default limit (8 compilations per function) would turn the 9th bucket into a hard error
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
            return self.compiled(*args)

    @staticmethod
    def unsupported_reason(model) -> str | None:
        """Why the fast path cannot run this NextGPT model, or None when it can."""
        return unsupported_reason(model.language_model)

    @classmethod
    def supports(cls, model) -> bool:
        return cls.unsupported_reason(model) is None

    @classmethod
    def refusal_note(cls, model) -> str | None:
        """What to tell a user whose model answers through generate() instead (why, and for a bitsandbytes model the
        faster option), or None when the fast path runs it."""
        reason = cls.unsupported_reason(model)
        return None if reason is None else f"answering through generate(), not the fast path: {reason}"

    @classmethod
    def accepts(cls, options: dict) -> bool:
        """Whether `generate` takes all these options (others, such as num_beams or top_k, need `model.generate`)."""
        return set(options) <= set(inspect.signature(cls.generate).parameters) - {"self"}

    def _decoder_for(self, batch_size: int, slots: int) -> LlamaFamilyDecoder:
        cache_length = padded_cache_length(slots)
        key = (batch_size, cache_length)
        decoder = self.decoders.pop(key, None)
        if decoder is None:
            if len(self.decoders) >= MAX_DECODERS:
                oldest = self.decoders.pop(next(iter(self.decoders)))
                self.loops = {kind: loop for kind, loop in self.loops.items() if loop.decoder is not oldest}
            decoder = LlamaFamilyDecoder(self.model.language_model, batch_size, cache_length, self.layer)
        self.decoders[key] = decoder  # most recently used last
        return decoder

    def _loop_for(self, decoder: LlamaFamilyDecoder, *, eos_count: int, do_sample: bool, nucleus: bool) -> "TokenLoop":
        kind = (decoder.batch_size, decoder.cache_length, eos_count, do_sample, nucleus)
        if kind not in self.loops:
            self.loops[kind] = TokenLoop(decoder, eos_count=eos_count, do_sample=do_sample, nucleus=nucleus)
        return self.loops[kind]

    def _encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The frozen tower, replayed from a CUDA graph per input shape on CUDA. Image counts are padded to a power of
        two (each image is encoded on its own), so that a few graphs serve batches of any size."""
        if not pixel_values.is_cuda:
            return self.model.encode_images(pixel_values)
        count = len(pixel_values)
        padding = (0, 0) * (pixel_values.dim() - 1) + (0, padded_count(count) - count)  # on the image axis
        padded = torch.nn.functional.pad(pixel_values, padding)
        key = (tuple(padded.shape), padded.dtype)
        if key not in self.tower_graphs:
            self.tower_graphs[key] = GraphedCall(self.model.encode_images)
        return self.tower_graphs[key](padded)[:count].clone()

    def prefill(self, decoder: LlamaFamilyDecoder, input_ids: torch.LongTensor, prompt_mask: torch.Tensor, *,
                pixel_values: torch.Tensor | None = None, image_embeds: torch.Tensor | None = None,
                input_features: torch.Tensor | None = None, pixel_values_videos: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Writes left-padded prompts (with their images, audio and videos) into the decoder's `rows` (default: the
        first), padded further on the left to `padded_prompt_length`; returns their last logits and each row's last
        position.
        On CUDA the prefill is replayed from a CUDA graph per shape (see LlamaFamilyDecoder.prefill), the tower from
        one per padded image count; the audio branch and videos run eagerly."""
        positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
        if pixel_values is not None:
            image_embeds = self._encode_images(pixel_values)
        inputs_embeds = self.model.embed_inputs(input_ids, image_embeds=image_embeds, input_features=input_features,
                                                pixel_values_videos=pixel_values_videos)
        # Masked slots on the left, so that each prefill graph serves many prompt lengths.
        padding = padded_prompt_length(input_ids.shape[1]) - input_ids.shape[1]
        inputs_embeds = torch.nn.functional.pad(inputs_embeds, (0, 0, padding, 0))
        prompt_mask, positions = (torch.nn.functional.pad(t, (padding, 0)) for t in (prompt_mask, positions))
        return decoder.prefill(inputs_embeds, prompt_mask, positions, rows), positions[:, -1].clone()

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        max_new_tokens: int = 128,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        eos_token_id: int | list[int] | None = None,
        pad_token_id: int | None = None,
        stop_strings: list[str] | None = None,
        tokenizer=None,
        streamer=None,
    ) -> torch.LongTensor:
        """Prompt and new tokens, (batch, prompt + up to max_new_tokens), like `generate`; finished rows are padded.
        A transformers streamer (batch size 1) gets the prompt, then each new token as it is chosen."""
        device = self.model.device
        input_ids = input_ids.to(device)
        batch_size, prompt_length = input_ids.shape
        prompt_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask.to(device)
        generation_config = self.model.generation_config
        eos = eos_token_id if eos_token_id is not None else generation_config.eos_token_id
        eos = torch.tensor([eos] if isinstance(eos, int) else list(eos or []), device=device)
        pad = pad_token_id if pad_token_id is not None else generation_config.pad_token_id
        pad = pad if pad is not None else (int(eos[0]) if len(eos) else 0)
        if stop_strings and tokenizer is None:
            raise ValueError("stop_strings need the tokenizer")
        if pixel_values is not None and image_embeds is not None:
            raise ValueError("Pass pixel_values or image_embeds, not both")
        self.model.config.check_fits(prompt_length, max_new_tokens)

        decoder = self._decoder_for(batch_size, padded_prompt_length(prompt_length) + max_new_tokens)
        logits, position = self.prefill(
            decoder, input_ids, prompt_mask, image_embeds=image_embeds,
            pixel_values=None if pixel_values is None else pixel_values.to(device),
            input_features=None if input_features is None else input_features.to(device),
            pixel_values_videos=None if pixel_values_videos is None else pixel_values_videos.to(device))
        loop = self._loop_for(decoder, eos_count=len(eos), do_sample=do_sample, nucleus=do_sample and top_p < 1.0)
        loop.start(logits, position, eos=eos, pad=pad, temperature=temperature, top_p=top_p,
                   max_new_tokens=max_new_tokens)
        if streamer is not None:
            streamer.put(input_ids.cpu())
        # Asking the GPU whether every row is done stalls the pipeline, so without per-token host work it is asked
        # only every few tokens; the columns decoded past the end are cut off below.
        check_every = 1 if streamer is not None or stop_strings else FINISHED_CHECK_INTERVAL
        for index in range(max_new_tokens):
            if index:
                loop.next()  # finished rows decode unseen tokens
            if streamer is not None:
                streamer.put(loop.new_tokens[:, index].cpu())
            if stop_strings:
                tails = loop.new_tokens[:, max(index + 1 - STOP_STRING_TOKENS, 0): index + 1].tolist()
                loop.finish(torch.tensor([ends_with_stop_string(tail, stop_strings, tokenizer) for tail in tails],
                                         device=device), index)
            if index == max_new_tokens - 1 or ((index + 1) % check_every == 0 and bool(loop.finished.all())):
                break
        new_tokens = loop.new_tokens[:, : int(loop.finished_at.max()) + 1]
        if streamer is not None:
            streamer.end()
        return torch.cat([input_ids, new_tokens], dim=1)


class TokenLoop:
    """A generation's per-token state on the GPU for one decoder (its batch size and cache length), and its per-token
    work: the decoder stepped on the last chosen tokens, the next ones chosen, written down (pad after a row's end)
    and checked for EOS. On CUDA that work is replayed from one CUDA graph, so that the host launches one graph a
    token where it launched about fifteen small kernels around the step's graph (batch 1 on an H200: +0.8-1.6% tokens
    a second, benchmarks/RESULTS.md, "The generation loop in the step's graph")."""

    def __init__(self, decoder: LlamaFamilyDecoder, *, eos_count: int, do_sample: bool, nucleus: bool):
        rows, device = decoder.batch_size, decoder.filled.device
        self.decoder = decoder
        self.chosen, self.position, self.finished_at = (torch.zeros(rows, dtype=torch.long, device=device)
                                                       for _ in range(3))
        self.index, self.pad = (torch.zeros((), dtype=torch.long, device=device) for _ in range(2))
        self.new_tokens = torch.zeros(rows, decoder.cache_length, dtype=torch.long, device=device)
        self.finished = torch.zeros(rows, dtype=torch.bool, device=device)
        self.eos = torch.zeros(eos_count, dtype=torch.long, device=device)
        self.temperature = torch.ones(rows, device=device) if do_sample else None
        self.top_p = torch.ones(rows, device=device) if nucleus else None
        updates = (self.chosen, self.position, self.finished_at, self.index, self.new_tokens, self.finished,
                   *decoder.bookkeeping)
        self.graph = GraphedCall(self._next, updates=updates) if device.type == "cuda" else None

    def start(self, logits: torch.Tensor, position: torch.Tensor, *, eos: torch.Tensor, pad: int, temperature: float,
              top_p: float, max_new_tokens: int) -> None:
        """A new generation from the prompts' last `logits` and `position`s: chooses and writes its first tokens."""
        self.position.copy_(position)
        self.index.zero_()
        self.finished.zero_()
        self.finished_at.fill_(max_new_tokens - 1)
        self.eos.copy_(eos)
        self.pad.fill_(pad)
        if self.temperature is not None:
            self.temperature.fill_(temperature)
        if self.top_p is not None:
            self.top_p.fill_(top_p)
        self._choose(logits)

    def next(self) -> None:
        """The next tokens, written at column `index` of `new_tokens`."""
        if self.graph is None:
            self._next()
        else:
            self.graph()

    def finish(self, rows: torch.Tensor, index: int | torch.Tensor) -> None:
        """Ends `rows` (boolean) at their token `index` (stop strings, found on the host; EOS). No masked_fill_:
        with a tensor value it reads the value on the host, which a CUDA graph's capture cannot."""
        newly_finished = rows & ~self.finished
        self.finished_at.copy_(torch.where(newly_finished, index, self.finished_at))
        self.finished |= newly_finished

    def _next(self) -> None:
        self.position += 1
        self._choose(self.decoder.advance(self.chosen, self.position))

    def _choose(self, logits: torch.Tensor) -> None:
        noise = None if self.temperature is None else torch.empty_like(logits).exponential_()
        chosen = choose_tokens(logits, self.temperature, self.top_p, noise=noise)
        tokens = torch.where(self.finished, self.pad, chosen)
        self.new_tokens.scatter_(1, self.index.expand(len(tokens), 1), tokens[:, None])
        self.finish(torch.isin(tokens, self.eos), self.index)
        self.chosen.copy_(chosen)
        self.index += 1


def padded_count(count: int) -> int:
    """The power of two at or above `count`: batch sizes are rounded up to these, so a few CUDA graphs serve all."""
    return 1 << max(count - 1, 0).bit_length()


def round_up(value: int, step: int) -> int:
    """The multiple of `step` at or above `value`: lengths are rounded to these, so a few CUDA graphs serve all."""
    return -(-value // step) * step


def padded_prompt_length(length: int) -> int:
    """Prompts are left-padded to a multiple of PROMPT_LENGTH_STEP: one prefill graph per padded length."""
    return round_up(length, PROMPT_LENGTH_STEP)


def padded_cache_length(slots: int) -> int:
    """Cache lengths are rounded up to a multiple of CACHE_LENGTH_STEP: a few caches and graphs serve every length."""
    return round_up(slots, CACHE_LENGTH_STEP)


def choose_tokens(logits: torch.Tensor, temperature: torch.Tensor | None = None, top_p: torch.Tensor | None = None,
                  noise: torch.Tensor | None = None) -> torch.Tensor:
    """Each row's next token: the most likely without `temperature`, or where a row's temperature is 0; else drawn
    from softmax(logits / temperature) within the row's `top_p` nucleus. `noise` (rows x vocab, Exponential(1))
    makes the draw: the argmax of probability / noise is a sample of the distribution, so a row can take its noise
    from its own seeded generator."""
    greedy = logits.argmax(-1)
    if temperature is None:
        return greedy
    probabilities = torch.softmax(logits / temperature.clamp(min=1e-5)[:, None], dim=-1)
    if top_p is not None:
        sorted_probabilities, order = probabilities.sort(dim=-1, descending=True)
        outside = sorted_probabilities.cumsum(-1) - sorted_probabilities > top_p[:, None]
        probabilities = torch.zeros_like(probabilities).scatter(-1, order, sorted_probabilities.masked_fill(outside, 0))
    return torch.where(temperature > 0, (probabilities / noise).argmax(-1), greedy)


def ends_with_stop_string(tokens: list[int], stop_strings: list[str], tokenizer) -> bool:
    """Whether the last few tokens contain a stop string."""
    tail = tokenizer.decode(tokens[-STOP_STRING_TOKENS:], skip_special_tokens=True)
    return any(stop in tail for stop in stop_strings)


__all__ = [
    "FastGenerator", "TokenLoop", "choose_tokens", "ends_with_stop_string", "padded_cache_length", "padded_count",
    "padded_prompt_length", "round_up",
]
