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
PROMPT_LENGTH_STEP = 32  # prompts are left-padded to a multiple of this: one prefill graph per padded length
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
        cache_length = -(-slots // CACHE_LENGTH_STEP) * CACHE_LENGTH_STEP
        key = (batch_size, cache_length)
        decoder = self.decoders.pop(key, None)
        if decoder is None:
            if len(self.decoders) >= MAX_DECODERS:
                del self.decoders[next(iter(self.decoders))]
            decoder = LlamaFamilyDecoder(self.model.language_model, batch_size, cache_length, self.layer)
        self.decoders[key] = decoder  # most recently used last
        return decoder

    def _encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The frozen tower, replayed from a CUDA graph per input shape on CUDA."""
        if not pixel_values.is_cuda:
            return self.model.encode_images(pixel_values)
        key = (tuple(pixel_values.shape), pixel_values.dtype)
        if key not in self.tower_graphs:
            self.tower_graphs[key] = GraphedCall(self.model.encode_images)
        return self.tower_graphs[key](pixel_values).clone()

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
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

        limit = self.model.config.context_length
        if limit and prompt_length + max_new_tokens > limit:
            raise ValueError(f"prompt + max_new_tokens = {prompt_length + max_new_tokens} tokens, past the model's "
                             f"{limit} positions")
        positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
        if pixel_values is not None:
            image_embeds = self._encode_images(pixel_values.to(device))
        inputs_embeds = self.model.embed_inputs(input_ids, image_embeds=image_embeds)
        # Masked slots on the left, so that each prefill graph serves many prompt lengths.
        padding = -prompt_length % PROMPT_LENGTH_STEP
        inputs_embeds = torch.nn.functional.pad(inputs_embeds, (0, 0, padding, 0))
        prompt_mask, positions = (torch.nn.functional.pad(t, (padding, 0)) for t in (prompt_mask, positions))
        decoder = self._decoder_for(batch_size, inputs_embeds.shape[1] + max_new_tokens)
        logits = decoder.prefill(inputs_embeds, prompt_mask, positions)

        if streamer is not None:
            streamer.put(input_ids.cpu())
        new_tokens = torch.full((batch_size, max_new_tokens), pad, dtype=torch.long, device=device)
        finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
        finished_at = torch.full((batch_size,), max_new_tokens - 1, dtype=torch.long, device=device)
        position = positions[:, -1].clone()
        # Asking the GPU whether every row is done stalls the pipeline, so without per-token host work it is asked
        # only every few tokens; the columns decoded past the end are cut off below.
        check_every = 1 if streamer is not None or stop_strings else FINISHED_CHECK_INTERVAL
        for index in range(max_new_tokens):
            chosen = self._choose(logits, do_sample, temperature, top_p)
            tokens = chosen.masked_fill(finished, pad)
            new_tokens[:, index] = tokens
            if streamer is not None:
                streamer.put(tokens.cpu())
            newly_finished = torch.isin(tokens, eos) & ~finished
            if stop_strings:
                newly_finished |= self._hit_stop_string(new_tokens[:, : index + 1], stop_strings, tokenizer) & ~finished
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

    @staticmethod
    def _choose(logits: torch.Tensor, do_sample: bool, temperature: float, top_p: float) -> torch.Tensor:
        if not do_sample:
            return logits.argmax(-1)
        probabilities = torch.softmax(logits / max(temperature, 1e-5), dim=-1)
        if top_p < 1.0:
            sorted_probabilities, order = probabilities.sort(dim=-1, descending=True)
            outside = sorted_probabilities.cumsum(-1) - sorted_probabilities > top_p
            sorted_probabilities = sorted_probabilities.masked_fill(outside, 0)
            probabilities = torch.zeros_like(probabilities).scatter(-1, order, sorted_probabilities)
        return torch.multinomial(probabilities, 1).squeeze(-1)

    @staticmethod
    def _hit_stop_string(generated: torch.Tensor, stop_strings: list[str], tokenizer) -> torch.Tensor:
        """Rows whose last few tokens contain a stop string."""
        tails = tokenizer.batch_decode(generated[:, -8:], skip_special_tokens=True)
        hits = [any(stop in tail for stop in stop_strings) for tail in tails]
        return torch.tensor(hits, device=generated.device)


__all__ = ["FastGenerator"]
