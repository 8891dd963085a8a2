"""Generation speed on the GPU: plain `generate`, `generate` with a static cache, and the fast path, side by side.

A Llama-2-7B-shaped LLM and an ImageBind-huge-shaped tower, random bf16 weights (nothing to download), a 64-token
question (`--question_tokens`) after the image (1 embedding token, or 257 patch tokens). For each image mode and method:
- time to first token (image already preprocessed; tower + prefill + first token), median of 5 after warm-up;
- batch-1 decode tokens/s over 256 new tokens, median of 3;
- aggregate tokens/s at batch 8 and 32 (128 new tokens each), median of 3;
- the roofline (the bytes a decode step reads / measured device copy bandwidth) and each decode speed as a fraction
  of it: the LLM's weights, but for an untied input embedding table, of which a step reads one row a token (until
  2026-11-29 the table was counted too, which put every fraction 2-6% higher: `llm_weight_GB` is still recorded);
- the first call of each method (compilation, graph capture) separately;
- whether the fast path's greedy tokens equal plain generate's: in bf16 (batch 1, 256 tokens; random weights give
  nearly flat logits, so kernel rounding differences flip the argmax early) and in float32 (same shapes rebuilt in
  float32, TF32 off: batch 1 and a left-padded batch of 2, 64 tokens).
With `--quantize int8,int4` the same model is measured again with weight-only quantized projections
(weight_quantization.py): the roofline of the quantized bytes, the fast path (quantized_decode_kernels.py) and
`generate` over the same layers (which dequantize for each product: 32 tokens, it is slow), and the quantized model's
logits against the bf16 model's on one prompt (KL divergence, top-1 agreement).

    python benchmarks/bench_generate.py --modes embedding --output results.jsonl   # one H100: about 6 minutes a mode
    python benchmarks/bench_generate.py --modes embedding --methods fast --quantize none,int8,int4 --speed_only
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_records import append_record  # noqa: E402
from configuration_nextgpt import NextGPTConfig  # noqa: E402
from fast_generation import FastGenerator  # noqa: E402
from modeling_nextgpt import NextGPTForConditionalGeneration  # noqa: E402
from transformers import StaticCache  # noqa: E402
from weight_quantization import quantize_named  # noqa: E402

QUESTION_TOKENS = 64


def copy_bandwidth(gigabytes: float = 4.0) -> float:
    """Bytes read + written per second by a large device-to-device copy."""
    source = torch.empty(int(gigabytes * 2**30), dtype=torch.uint8, device="cuda")
    target = torch.empty_like(source)
    target.copy_(source)
    torch.cuda.synchronize()
    times = []
    for _ in range(10):
        start = time.perf_counter()
        target.copy_(source)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 2 * source.numel() / statistics.median(times)


def timed(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_model(image_mode: str, dtype: torch.dtype = torch.bfloat16) -> NextGPTForConditionalGeneration:
    config = NextGPTConfig(image_mode=image_mode)  # ImageBind-huge + Llama-2-7b shapes
    torch.set_default_dtype(dtype)
    with torch.device("cuda"):
        model = NextGPTForConditionalGeneration(config).eval()
    torch.set_default_dtype(torch.float32)
    model.generation_config.eos_token_id = None  # random weights: always generate the full length
    model.generation_config.pad_token_id = 0
    return model


def make_inputs(model, batch_size: int, left_padding: int = 0, *, question_tokens: int = QUESTION_TOKENS) -> dict:
    config = model.config
    generator = torch.Generator().manual_seed(batch_size)
    question = torch.randint(100, 32000, (batch_size, question_tokens), generator=generator)
    image = torch.full((batch_size, config.num_image_tokens), config.image_token_id)
    input_ids = torch.cat([torch.ones(batch_size, 1, dtype=torch.long), image, question], dim=1).cuda()
    pixel_values = torch.randn(batch_size, 3, 224, 224, generator=generator).to("cuda", model.dtype)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[-1, :left_padding] = 0  # the last row is shorter, padded on the left
    return {"input_ids": input_ids, "attention_mask": attention_mask, "pixel_values": pixel_values}


def prefix_match(reference: torch.Tensor, ours: torch.Tensor) -> int:
    """How many leading tokens agree in every row."""
    return int((reference == ours).all(0).cumprod(0).sum())


def float32_identity(mode: str, record) -> None:
    """Greedy tokens of the fast path against plain generate with the 7B shapes in float32."""
    torch.backends.cuda.matmul.allow_tf32 = False
    model = build_model(mode, torch.float32)
    fast = FastGenerator(model)
    for batch_size, left_padding in ((1, 0), (2, 5)):
        inputs = make_inputs(model, batch_size, left_padding)
        prompt_length = inputs["input_ids"].shape[1]
        reference = model.generate(**inputs, max_new_tokens=64, min_new_tokens=64, do_sample=False)[:, prompt_length:]
        ours = fast.generate(**inputs, max_new_tokens=64, eos_token_id=[])[:, prompt_length:]
        record(kind="identity_float32", mode=mode, batch_size=batch_size, left_padding=left_padding,
               fast_equals_generate=bool(torch.equal(reference, ours)), identical_prefix_tokens=prefix_match(
                   reference, ours), of=reference.shape[1])
    torch.backends.cuda.matmul.allow_tf32 = True


def logit_error(model, quantized_name: str, record, mode: str) -> None:
    """Quantizes `model` in place; records how far its next-token distributions over one prompt moved."""
    inputs = make_inputs(model, 1)
    with torch.no_grad():
        reference = model(**inputs).logits.float().log_softmax(-1)
        quantize_named(model, quantized_name)
        quantized = model(**inputs).logits.float().log_softmax(-1)
    kl = (reference.exp() * (reference - quantized)).sum(-1)
    record(kind="logit_error", mode=mode, quantize=quantized_name, mean_kl=float(kl.mean()), max_kl=float(kl.max()),
           top1_agreement=float((reference.argmax(-1) == quantized.argmax(-1)).float().mean()),
           positions=reference.shape[1])


def measure(*, mode: str, bandwidth: float, batch_sizes: list[int], record, methods_wanted: list[str],
            quantize: str | None, question_tokens: int = QUESTION_TOKENS) -> None:
    """Every method's time to first token, batch-1 decode speed and batched throughput, for one image mode, with
    bf16 weights or `quantize`d ones, after a question of `question_tokens`."""
    model = build_model(mode)
    if quantize is not None:
        logit_error(model, quantize, record, mode)
    language_model = model.language_model
    weight_bytes = sum(t.numel() * t.element_size() for t in [*language_model.parameters(), *language_model.buffers()]
                       if t.dtype != torch.float32)  # not the rotary frequencies
    embedding = language_model.get_input_embeddings().weight
    unread = 0 if embedding is language_model.get_output_embeddings().weight else embedding.nbytes
    roofline = bandwidth / (weight_bytes - unread)
    label = quantize or "bf16"
    record(kind="roofline", mode=mode, weights=label, copy_bandwidth_TBps=bandwidth / 1e12,
           llm_weight_GB=weight_bytes / 1e9, step_read_GB=(weight_bytes - unread) / 1e9,
           roofline_tokens_per_s=roofline, device=torch.cuda.get_device_name(), torch=torch.__version__,
           transformers=__import__("transformers").__version__)
    fast = FastGenerator(model)
    static_caches = {}

    def static_generate(inputs, new_tokens):
        batch_size = inputs["input_ids"].shape[0]
        if batch_size not in static_caches:
            static_caches[batch_size] = StaticCache(config=model.config.text_config, max_cache_len=1024)
        cache = static_caches[batch_size]
        cache.reset()
        return model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                              cache=cache)

    methods = {
        "generate": lambda inputs, n: model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False),
        "generate_static": static_generate,
        "fast": lambda inputs, n: fast.generate(**inputs, max_new_tokens=n, eos_token_id=[]),
    }
    methods = {name: methods[name] for name in methods_wanted}
    # Quantized layers outside the fast path dequantize each weight for each product: fewer tokens suffice.
    tokens = {name: 32 if quantize and name != "fast" else 256 for name in methods}
    single = make_inputs(model, 1, question_tokens=question_tokens)
    outputs = {}
    for name, generate in methods.items():
        torch.cuda.synchronize()
        start = time.perf_counter()
        generate(single, 16)  # warm-up (and compilation, graph capture)
        torch.cuda.synchronize()
        first_call = time.perf_counter() - start
        ttft = timed(lambda: generate(single, 1), 5)
        outputs[name] = generate(single, tokens[name])
        decode = (tokens[name] - 1) / (timed(lambda: generate(single, tokens[name]), 3) - ttft)
        record(kind="batch1", mode=mode, weights=label, method=name, ttft_ms=ttft * 1e3, decode_tokens_per_s=decode,
               fraction_of_roofline=decode / roofline, first_call_s=first_call,
               prompt_tokens=single["input_ids"].shape[1])
    if {"generate", "fast"} <= set(methods):
        prompt_length, length = single["input_ids"].shape[1], min(tokens.values())
        reference = outputs["generate"][:, prompt_length:prompt_length + length]
        ours = outputs["fast"][:, prompt_length:prompt_length + length]
        record(kind="identity_bfloat16", mode=mode, weights=label,
               fast_equals_generate=bool(torch.equal(reference, ours)),
               identical_prefix_tokens=prefix_match(reference, ours), of=reference.shape[1])
    for batch_size in batch_sizes:
        inputs = make_inputs(model, batch_size, question_tokens=question_tokens)
        for name, generate in methods.items():
            if tokens[name] < 256:
                continue
            generate(inputs, 8)
            seconds = timed(lambda: generate(inputs, 128), 3)
            record(kind="batched", mode=mode, weights=label, method=name, batch_size=batch_size,
                   aggregate_tokens_per_s=batch_size * 128 / seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="bench_generate.jsonl")
    parser.add_argument("--modes", default="embedding,patches")
    parser.add_argument("--batch_sizes", default="8,32", help="batched throughput at these sizes; '' for none")
    parser.add_argument("--question_tokens", type=int, default=QUESTION_TOKENS,
                        help="the question's length after the image: the prompt's, for the first token")
    parser.add_argument("--float32_identity_only", action="store_true", help="skip the speed measurements")
    parser.add_argument("--speed_only", action="store_true", help="skip the float32 identity check")
    parser.add_argument("--methods", default="generate,generate_static,fast")
    parser.add_argument("--quantize", default="none", help="weights to measure: none (bf16), int8, int4; a list")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True

    def record(**fields):
        append_record(args.output, fields)

    bandwidth = copy_bandwidth()
    for mode in args.modes.split(","):
        if args.float32_identity_only:
            float32_identity(mode, record)
            continue
        for quantize in args.quantize.split(","):
            measure(mode=mode, bandwidth=bandwidth,
                    batch_sizes=[int(size) for size in args.batch_sizes.split(",") if size], record=record,
                    methods_wanted=args.methods.split(","), quantize=None if quantize == "none" else quantize,
                    question_tokens=args.question_tokens)
            torch.cuda.empty_cache()
        if not args.speed_only:
            float32_identity(mode, record)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
