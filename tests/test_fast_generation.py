"""The fast generation path against plain `generate`: identical greedy tokens, batching, EOS, stop strings, sampling."""

import pytest
import torch

from conftest import random_image, tiny_config, tiny_model
from fast_generation import FastGenerator, padded_cache_length


@pytest.fixture
def setup(make_processor):
    config = tiny_config("patches")
    model, processor = tiny_model(config, seed=3), make_processor(config)
    processor.tokenizer.padding_side = "left"
    questions = ["What shape is this?", "Is there a blue object in the image, and what colour is the background?",
                 "Colour?"]
    prompts = [processor.render([{"role": "user", "content": f"<image>\n{q}"}], add_generation_prompt=True)
               for q in questions]
    batch = processor(text=prompts, images=[random_image(i) for i in range(3)], padding=True, return_tensors="pt")
    return model, processor, batch


def test_greedy_tokens_equal_plain_generate(setup):
    model, processor, batch = setup
    fast = FastGenerator(model, compile_step=False)
    reference = model.generate(**batch, max_new_tokens=12, min_new_tokens=12, do_sample=False)
    ours = fast.generate(**batch, max_new_tokens=12, eos_token_id=[])
    assert torch.equal(ours, reference)
    # Image embeddings instead of pixels, and one row at a time, give the same tokens too.
    embeds = model.encode_images(batch["pixel_values"])
    rows = fast.generate(batch["input_ids"], batch["attention_mask"], image_embeds=embeds, max_new_tokens=12,
                         eos_token_id=[])
    assert torch.equal(rows, reference)


def test_the_fast_path_keeps_its_own_rotary_when_another_library_replaces_transformers(setup, monkeypatch):
    """Liger's training kernels replace transformers' module-level rotary function for the whole process; a fast
    decoder imported after that (remote code loaded after a CUDA training run, say) must not pick it up: Liger's
    cannot be compiled into one graph."""
    import importlib.util

    from conftest import REPO_ROOT
    from transformers.models.llama import modeling_llama

    def replaced(*args, **kwargs):
        raise AssertionError("the fast path used transformers' module-level rotary function")

    model, _, batch = setup
    reference = model.generate(**batch, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    monkeypatch.setattr(modeling_llama, "apply_rotary_pos_emb", replaced)
    spec = importlib.util.spec_from_file_location("fast_decoder_imported_late", REPO_ROOT / "fast_decoder.py")
    late = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(late)
    monkeypatch.setattr(FastGenerator, "_decoder_for", lambda self, batch_size, slots: late.LlamaFamilyDecoder(
        model.language_model, batch_size, padded_cache_length(slots)))
    assert torch.equal(FastGenerator(model, compile_step=False).generate(**batch, max_new_tokens=6, eos_token_id=[]),
                       reference)


def test_each_row_stops_at_its_own_eos(setup):
    model, processor, batch = setup
    fast = FastGenerator(model, compile_step=False)
    free = fast.generate(**batch, max_new_tokens=10, eos_token_id=[])
    prompt_length = batch["input_ids"].shape[1]
    eos = int(free[0, prompt_length + 2])  # make row 0's third token an EOS
    stopped = fast.generate(**batch, max_new_tokens=10, eos_token_id=eos, pad_token_id=-1)
    reference = model.generate(**batch, max_new_tokens=10, do_sample=False, eos_token_id=eos, pad_token_id=-1)
    assert torch.equal(stopped, reference[:, : stopped.shape[1]])
    assert (stopped[0, prompt_length + 3 :] == -1).all()


def test_stop_strings_end_generation(setup):
    model, processor, batch = setup
    fast = FastGenerator(model, compile_step=False)
    free = fast.generate(**batch, max_new_tokens=10, eos_token_id=[])
    prompt_length = batch["input_ids"].shape[1]
    text = processor.tokenizer.decode(free[1, prompt_length : prompt_length + 4])
    stop = text[-3:]
    stopped = fast.generate(**batch, max_new_tokens=10, eos_token_id=[], stop_strings=[stop],
                            tokenizer=processor.tokenizer, pad_token_id=-1)
    row = stopped[1, prompt_length:]
    kept = row[row >= 0]
    assert stop in processor.tokenizer.decode(kept) and len(kept) <= 4 and stopped.shape[1] < free.shape[1]


def test_sampling_follows_the_seed_and_top_p_one_token_is_greedy(setup):
    model, processor, batch = setup
    fast = FastGenerator(model, compile_step=False)
    torch.manual_seed(0)
    first = fast.generate(**batch, max_new_tokens=6, do_sample=True, temperature=0.8, eos_token_id=[])
    torch.manual_seed(0)
    again = fast.generate(**batch, max_new_tokens=6, do_sample=True, temperature=0.8, eos_token_id=[])
    assert torch.equal(first, again)
    greedy = fast.generate(**batch, max_new_tokens=6, eos_token_id=[])
    nucleus = fast.generate(**batch, max_new_tokens=6, do_sample=True, top_p=1e-6, eos_token_id=[])
    assert torch.equal(nucleus, greedy)


def test_prompts_past_the_context_are_refused(setup):
    model, processor, batch = setup
    with pytest.raises(ValueError, match="past the 2048 positions available"):
        FastGenerator(model, compile_step=False).generate(**batch, max_new_tokens=4000)


def test_model_fast_generate_keeps_one_generator_and_streams(setup):
    from transformers import TextStreamer

    model, processor, batch = setup
    single = {key: value[:1] for key, value in batch.items()}
    single["pixel_values"] = batch["pixel_values"][:1]
    reference = model.generate(**single, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    streamed = []

    class Collect(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False):
            streamed.append(text)

    ours = model.fast_generate(**single, max_new_tokens=5, eos_token_id=[],
                               streamer=Collect(processor.tokenizer, skip_prompt=True))
    assert torch.equal(ours, reference) and model._fast_generator is not None
    prompt_length = single["input_ids"].shape[1]
    assert "".join(streamed) == processor.tokenizer.decode(reference[0, prompt_length:])
    generator = model._fast_generator
    model.fast_generate(**single, max_new_tokens=2)
    assert model._fast_generator is generator


@pytest.mark.parametrize("field, value, reason", [
    ("hidden_act", "gelu", "only SiLU-gated MLPs"),
    ("rope_parameters", {"rope_type": "dynamic", "rope_theta": 1e4, "factor": 2.0}, "'dynamic' rotary scaling"),
    ("sliding_window", 64, "sliding-window attention"),
])
def test_language_models_it_cannot_run_are_refused_with_the_reason(setup, field, value, reason):
    model, processor, batch = setup
    assert model.can_fast_generate
    setattr(model.language_model.config, field, value)
    assert not model.can_fast_generate
    with pytest.raises(ValueError, match=reason):
        FastGenerator(model)


def test_bitsandbytes_models_are_told_the_faster_option(setup, monkeypatch, caplog):
    from unittest.mock import PropertyMock, patch

    model, _, _ = setup
    monkeypatch.setattr(model.language_model, "is_quantized", True, raising=False)
    with pytest.raises(ValueError, match="load the bf16 weights with --quantize int4 or int8"):
        FastGenerator(model)
    with patch.object(type(model), "device", new_callable=PropertyMock, return_value=torch.device("cuda")):
        assert model.generate_function_for({"max_new_tokens": 4}) == model.generate  # the pipeline's choice
    assert "answering through generate(), not the fast path: bitsandbytes' quantized layers" in caplog.text


def test_a_model_loaded_in_nf4_by_from_pretrained_is_told_the_faster_option(setup, tmp_path):
    """The original's setting: from_pretrained(quantization_config=BitsAndBytesConfig(NF4)) flags the NextGPT model,
    not its language model, so the bitsandbytes layers themselves must be recognised."""
    pytest.importorskip("bitsandbytes")
    from transformers import BitsAndBytesConfig

    from modeling_nextgpt import NextGPTForConditionalGeneration

    model, _, _ = setup
    model.save_pretrained(tmp_path)
    nf4 = NextGPTForConditionalGeneration.from_pretrained(tmp_path, quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", llm_int8_skip_modules=["vision_tower", "projector", "lm_head"]))
    assert type(nf4.language_model.model.layers[0].mlp.up_proj).__module__.startswith("bitsandbytes")
    assert not nf4.can_fast_generate
    with pytest.raises(ValueError, match="bitsandbytes' quantized layers .* load the bf16 weights with --quantize"):
        FastGenerator(nf4)


def test_weights_quantized_by_another_library_are_refused_not_misread(setup):
    """torchao (TorchAoConfig) keeps Linear layers and swaps their weights for tensor subclasses."""

    class QuantizedStandIn(torch.Tensor):
        pass

    model, _, _ = setup
    up = model.language_model.model.layers[1].mlp.up_proj
    up.weight = torch.nn.Parameter(up.weight.detach().as_subclass(QuantizedStandIn), requires_grad=False)
    with pytest.raises(ValueError, match=r"weights are test_fast_generation\.\S*QuantizedStandIn tensors, not plain "):
        FastGenerator(model)


def test_unmerged_lora_adapters_are_refused_not_ignored(setup):
    from peft import LoraConfig, inject_adapter_in_model

    model, processor, batch = setup
    inject_adapter_in_model(LoraConfig(r=4, target_modules=["q_proj", "v_proj"]), model.language_model)
    assert not model.can_fast_generate
    with pytest.raises(ValueError, match=r"include peft\.tuners\.lora\.layer\.Linear layers, not plain Linear ones"):
        FastGenerator(model)


def test_the_pipeline_s_choice_fast_path_on_cuda_with_options_it_takes(setup):
    from unittest.mock import PropertyMock, patch

    model, processor, batch = setup
    assert model.generate_function_for({"max_new_tokens": 4}) == model.generate  # CPU
    with patch.object(type(model), "device", new_callable=PropertyMock, return_value=torch.device("cuda")):
        assert model.generate_function_for({"max_new_tokens": 4, "do_sample": True}) == model.fast_generate
        assert model.generate_function_for({"max_new_tokens": 4, "num_beams": 2}) == model.generate


def test_a_second_copy_of_the_kernel_modules_shares_their_ops_instead_of_redefining_them():
    """transformers imports remote code again under another module name. Redefining an op freed the operator the
    first copy still called: CI crashed (segfault) in that copy's next call, depending on memory reuse."""
    import importlib.util

    import decode_attention
    import decode_kernels
    import quantized_decode_kernels

    for first in (decode_kernels, quantized_decode_kernels, decode_attention):
        spec = importlib.util.spec_from_file_location(f"second_copy_of_{first.__name__}", first.__file__)
        second = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(second)
        for name in ("stacked_matvec", "gated_matvec", "matvec_residual_norm", "quantized_stacked_product",
                     "quantized_gated_product", "quantized_product_residual_norm", "step_attention"):
            if hasattr(first, name):
                op = getattr(torch.ops.nextgpt, name).default
                assert getattr(first, name)._opoverload is op and getattr(second, name) is op
    x, gate, up = torch.randn(1, 8), torch.randn(4, 8), torch.randn(4, 8)
    torch.testing.assert_close(decode_kernels.gated_matvec(x, gate, up),
                               torch.nn.functional.silu(x @ gate.T) * (x @ up.T))

    def different_signature(x: torch.Tensor) -> torch.Tensor:
        return x

    with pytest.raises(RuntimeError, match="nextgpt::gated_matvec is already defined as .* another copy"):
        decode_kernels.define_op("nextgpt::gated_matvec", fake=different_signature)(different_signature)


def test_an_evicted_decoder_takes_its_token_loops_along(setup, monkeypatch):
    """Decoders (caches, graphs) are kept for MAX_DECODERS buckets; each token loop holds its decoder's state, so the
    loops of the one evicted go with it, and a later call in that bucket starts afresh with the same tokens."""
    import fast_generation

    model, _, batch = setup
    monkeypatch.setattr(fast_generation, "MAX_DECODERS", 1)
    fast = FastGenerator(model, compile_step=False)
    single = {key: value[:1] for key, value in batch.items()}
    first = fast.generate(**batch, max_new_tokens=5, eos_token_id=[])
    fast.generate(**single, max_new_tokens=5, eos_token_id=[])
    assert [loop.decoder for loop in fast.loops.values()] == list(fast.decoders.values())
    assert torch.equal(fast.generate(**batch, max_new_tokens=5, eos_token_id=[]), first)


def test_several_rows_of_plain_weights_run_in_the_compiled_graph_and_one_row_takes_the_matvec_ops():
    """One row: our matrix-vector ops (one launch for q|k|v, the gate in gate|up's). Several rows: plain F.linear, which
    the compiler sees (no copy of one weight's product, the gate fused), with the same values."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from fast_decoder import gated_product, project

    class Calls(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.name())
            return func(*args, **(kwargs or {}))

    weights = [torch.randn(16, 8) for _ in range(3)]
    for rows, expected_op in ((1, "nextgpt::stacked_matvec"), (4, None)):
        hidden = torch.randn(rows, 8)
        with Calls() as calls:
            stacked, single = project(hidden, weights), project(hidden, weights[:1])
            gated = gated_product(hidden, weights[0], weights[1])
        torch.testing.assert_close(stacked, torch.cat([hidden @ w.T for w in weights], -1))
        torch.testing.assert_close(single, hidden @ weights[0].T)
        torch.testing.assert_close(gated, torch.nn.functional.silu(hidden @ weights[0].T) * (hidden @ weights[1].T))
        ours = [name for name in calls.names if name.startswith("nextgpt::")]
        if expected_op:
            assert ours == [expected_op, expected_op, "nextgpt::gated_matvec"], calls.names
        else:
            assert ours == [] and calls.names.count("aten::cat") == 1, calls.names
