"""Fast generation for NextGPT: images are encoded once in the prefill; decoding runs from a preallocated static KV
cache with the one-token step compiled into a CUDA graph (`torch.compile(mode="reduce-overhead")`). Greedy or
sampled (temperature, top-p), batch sizes 1 to 32, EOS and stop strings handled per sequence.

Greedy output equals `model.generate(..., do_sample=False)` token for token (tests/test_fast_generation.py).
`benchmarks/bench_generate.py` measures it against `generate` with dynamic and static caches.
"""

import torch
from transformers import StaticCache

CACHE_LENGTH_STEP = 256  # cache lengths are rounded up to this, so a few compiled graphs serve every request


class FastGenerator:
    """Holds one static cache (and its compiled decode graph) per (batch size, cache length) bucket."""

    def __init__(self, model, compile_step: bool | None = None):
        self.model = model
        self.compile_step = model.device.type == "cuda" if compile_step is None else compile_step
        self.step = (
            torch.compile(self._decode_step, mode="reduce-overhead")
            if self.compile_step else self._decode_step
        )
        self.caches: dict[tuple[int, int], tuple[StaticCache, torch.Tensor]] = {}

    def _decode_step(self, tokens: torch.Tensor, position_ids: torch.Tensor, attention_mask: torch.Tensor, cache):
        outputs = self.model.language_model(
            input_ids=tokens, position_ids=position_ids, attention_mask=attention_mask, cache=cache, use_cache=True
        )
        return outputs.logits[:, -1, :].float()

    def _cache_for(self, batch_size: int, length: int) -> tuple[StaticCache, torch.Tensor]:
        text_config = self.model.config.text_config
        limit = getattr(text_config, "max_position_embeddings", None)
        if limit and length > limit:
            raise ValueError(f"prompt + max_new_tokens = {length} tokens, past the model's {limit} positions")
        cache_length = -(-length // CACHE_LENGTH_STEP) * CACHE_LENGTH_STEP
        if limit:
            cache_length = min(cache_length, limit)
        key = (batch_size, cache_length)
        if key not in self.caches:
            cache = StaticCache(config=text_config, max_cache_len=cache_length)
            mask = torch.zeros(batch_size, cache_length, dtype=torch.long, device=self.model.device)
            self.caches[key] = (cache, mask)
        cache, mask = self.caches[key]
        cache.reset()
        mask.zero_()
        return cache, mask

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

        cache, mask = self._cache_for(batch_size, prompt_length + max_new_tokens)
        mask[:, :prompt_length] = prompt_mask
        positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
        inputs_embeds = self.model.embed_inputs(input_ids, pixel_values, image_embeds)
        logits = self.model.language_model(
            inputs_embeds=inputs_embeds, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1, :].float()

        if streamer is not None:
            streamer.put(input_ids.cpu())
        new_tokens = torch.full((batch_size, max_new_tokens), pad, dtype=torch.long, device=device)
        finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
        position = positions[:, -1:].clone()
        for index in range(max_new_tokens):
            tokens = self._choose(logits, do_sample, temperature, top_p)
            tokens = torch.where(finished, torch.full_like(tokens, pad), tokens)
            new_tokens[:, index] = tokens
            if streamer is not None:
                streamer.put(tokens.cpu())
            finished |= torch.isin(tokens, eos)
            if stop_strings:
                finished |= self._hit_stop_string(new_tokens[:, : index + 1], stop_strings, tokenizer)
            if index == max_new_tokens - 1 or bool(finished.all()):
                new_tokens = new_tokens[:, : index + 1]
                break
            position += 1
            mask[:, prompt_length + index] = 1
            logits = self.step(tokens[:, None], position, mask, cache).clone()
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
