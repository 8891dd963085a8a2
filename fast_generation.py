"""Fast generation for NextGPT: images are encoded once, in the prefill; the lean Llama-family decoder
(fast_decoder.py) fills its own preallocated KV cache and decodes with Triton matrix-vector kernels
(decode_kernels.py). On CUDA the tower, the prefill and each decode step are replayed from CUDA graphs, and the host
never waits for the GPU between tokens (unless a streamer or stop strings need each token).
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
        reason = unsupported_reason(model.language_model)
        if reason:
            raise ValueError(f"the fast generation path cannot run this model: {reason}; use generate()")
        self.model = model
        self.compile_step = model.device.type == "cuda" if compile_step is None else compile_step
        # One compiled layer serves every layer and bucket (shapes that change become dynamic after the first); the
        # decode step's CUDA graph is our own (fast_decoder.py), so no "reduce-overhead" mode.
        self.compiled = torch.compile(layer_forward, fullgraph=True) if self.compile_step else None
        self.layer = self._compiled_layer if self.compile_step else layer_forward
        self.decoders: dict[tuple[int, int], LlamaFamilyDecoder] = {}
        self.tower_graphs: dict[tuple, GraphedCall] = {}

    def _compiled_layer(self, *args) -> torch.Tensor:
        # dynamo's default limit (8 compilations per function) would turn the 9th bucket into a hard error
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
            return self.compiled(*args)

    @staticmethod
    def supports(model) -> bool:
        return unsupported_reason(model.language_model) is None

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
                del self.decoders[next(iter(self.decoders))]
            decoder = LlamaFamilyDecoder(self.model.language_model, batch_size, cache_length, self.layer)
        self.decoders[key] = decoder  # most recently used last
        return decoder

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
        sampling = {}
        if do_sample:
            sampling = {"temperature": torch.full((batch_size,), float(temperature), device=device),
                        "top_p": torch.full((batch_size,), float(top_p), device=device) if top_p < 1.0 else None}

        if streamer is not None:
            streamer.put(input_ids.cpu())
        new_tokens = torch.full((batch_size, max_new_tokens), pad, dtype=torch.long, device=device)
        finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
        finished_at = torch.full((batch_size,), max_new_tokens - 1, dtype=torch.long, device=device)
        # Asking the GPU whether every row is done stalls the pipeline, so without per-token host work it is asked
        # only every few tokens; the columns decoded past the end are cut off below.
        check_every = 1 if streamer is not None or stop_strings else FINISHED_CHECK_INTERVAL
        for index in range(max_new_tokens):
            noise = torch.empty_like(logits).exponential_() if do_sample else None
            chosen = choose_tokens(logits, **sampling, noise=noise)
            tokens = chosen.masked_fill(finished, pad)
            new_tokens[:, index] = tokens
            if streamer is not None:
                streamer.put(tokens.cpu())
            newly_finished = torch.isin(tokens, eos) & ~finished
            if stop_strings:
                tails = new_tokens[:, max(index + 1 - STOP_STRING_TOKENS, 0): index + 1].tolist()
                newly_finished |= torch.tensor([ends_with_stop_string(tail, stop_strings, tokenizer) for tail in tails],
                                               device=device) & ~finished
            finished_at.masked_fill_(newly_finished, index)
            finished |= newly_finished
            if index == max_new_tokens - 1 or ((index + 1) % check_every == 0 and bool(finished.all())):
                break
            position += 1
            logits = decoder.step(chosen, position)  # finished rows decode unseen tokens
        new_tokens = new_tokens[:, : int(finished_at.max()) + 1]
        if streamer is not None:
            streamer.end()
        return torch.cat([input_ids, new_tokens], dim=1)


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


__all__ = ["FastGenerator", "choose_tokens", "ends_with_stop_string", "padded_cache_length", "padded_count",
           "padded_prompt_length", "round_up"]
