"""The model: image/token merge, image counts, generation with the KV cache, batching, freezing, towers."""

import pytest
import torch
from transformers import CLIPVisionConfig, SiglipVisionConfig

from conftest import random_image, tiny_config, tiny_model
from configuration_nextgpt import NextGPTConfig
from modeling_nextgpt import NextGPTForConditionalGeneration


def capture_llm_inputs(model):
    captured = {}

    def hook(module, args, kwargs):
        captured["inputs_embeds"] = kwargs["inputs_embeds"].detach().clone()

    model.language_model.register_forward_pre_hook(hook, with_kwargs=True)
    return captured


@pytest.mark.parametrize("image_mode", ["embedding", "patches"])
def test_image_tokens_replace_exactly_the_placeholders(image_mode):
    config = tiny_config(image_mode)
    model = tiny_model(config)
    n = config.num_image_tokens
    image, text_ids = config.image_token_id, [5, 6, 7, 8, 9]
    # Row 0: two images, row 1: none (text only), in one batch.
    row0 = text_ids[:1] + [image] * n + text_ids[1:3] + [image] * n + text_ids[3:]
    row1 = text_ids + [10] * (len(row0) - len(text_ids))
    input_ids = torch.tensor([row0, row1])
    pixel_values = torch.randn(2, 3, 224, 224)
    captured = capture_llm_inputs(model)
    with torch.no_grad():
        model(input_ids=input_ids, pixel_values=pixel_values)
        expected_images = model.projector(model.encode_images(pixel_values))
        token_embeds = model.get_input_embeddings()(torch.tensor([row1]))[0]
    merged = captured["inputs_embeds"]
    positions = (input_ids[0] == image).nonzero().flatten()
    torch.testing.assert_close(merged[0, positions], expected_images.reshape(-1, expected_images.shape[-1]))
    text_positions = (input_ids[0] != image).nonzero().flatten()
    torch.testing.assert_close(merged[0, text_positions], model.get_input_embeddings()(input_ids[0, text_positions]))
    torch.testing.assert_close(merged[1], token_embeds)


def test_image_order_follows_reading_order():
    config = tiny_config("embedding")
    model = tiny_model(config)
    image = config.image_token_id
    input_ids = torch.tensor([[image, 5, 6], [7, image, 8]])
    pixel_values = torch.randn(2, 3, 224, 224)
    captured = capture_llm_inputs(model)
    with torch.no_grad():
        model(input_ids=input_ids, pixel_values=pixel_values)
        features = model.projector(model.encode_images(pixel_values))
    torch.testing.assert_close(captured["inputs_embeds"][0, 0], features[0, 0])
    torch.testing.assert_close(captured["inputs_embeds"][1, 1], features[1, 0])


def test_merge_reads_nothing_off_the_device_and_matches_masked_scatter(monkeypatch):
    """merge_features writes each item's tokens over its placeholders in reading order across rows, with the values
    and both gradients of masked_scatter, and (its count check switched off, as while training) without an operator
    that reads the device: masked_scatter's backward (masked_select) stopped the host at every training backward."""
    from modeling_nextgpt import merge_features

    torch.manual_seed(0)
    input_ids = torch.randint(0, 50, (2, 12))
    input_ids[0, 2:5], input_ids[1, 0:3] = 99, 99  # one item of 3 tokens a row
    embeds = torch.randn(2, 12, 8, requires_grad=True)
    features = torch.randn(2, 3, 8, requires_grad=True)
    merged = merge_features(input_ids, embeds, features, 99)
    expected = embeds.masked_scatter((input_ids == 99).unsqueeze(-1), features.reshape(-1, 8))
    assert torch.equal(merged, expected)
    upstream = torch.randn_like(merged)
    for ours, theirs in zip(torch.autograd.grad(merged, (embeds, features), upstream),
                            torch.autograd.grad(expected, (embeds, features), upstream)):
        assert torch.equal(ours, theirs)
    monkeypatch.setenv("TRANSFORMERS_DISABLE_TORCH_CHECK", "1")
    with torch.profiler.profile() as profile:
        merge_features(input_ids, embeds, features, 99).backward(upstream)
    reads = {"aten::_local_scalar_dense", "aten::item", "aten::nonzero", "aten::masked_select", "aten::is_nonzero"}
    assert not reads & {event.name for event in profile.events()}


def test_count_mismatch_names_both_counts():
    config = tiny_config("embedding")
    model = tiny_model(config)
    input_ids = torch.tensor([[config.image_token_id, 5, config.image_token_id]])
    with pytest.raises(ValueError, match=r"2 image placeholder tokens.*but 3 images"):
        model(input_ids=input_ids, pixel_values=torch.randn(3, 3, 224, 224))
    with pytest.raises(ValueError, match=r"2 image placeholder tokens but no images"):
        model(input_ids=input_ids)


def test_image_embeds_give_the_same_logits_as_pixels():
    config = tiny_config("patches")
    model = tiny_model(config)
    input_ids = torch.tensor([[5] + [config.image_token_id] * config.num_image_tokens + [6, 7]])
    pixel_values = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        from_pixels = model(input_ids=input_ids, pixel_values=pixel_values).logits
        from_cache = model(input_ids=input_ids, image_embeds=model.encode_images(pixel_values)).logits
    torch.testing.assert_close(from_pixels, from_cache)


def test_labels_give_a_loss_and_gradients_reach_only_trainable_parts():
    config = tiny_config("embedding")
    model = tiny_model(config).train()
    model.set_trainable(projector=True, language_model=False)
    input_ids = torch.tensor([[config.image_token_id, 5, 6, 7]])
    labels = torch.tensor([[-100, -100, 6, 7]])
    loss = model(input_ids=input_ids, pixel_values=torch.randn(1, 3, 224, 224), labels=labels).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.projector.parameters())
    assert all(p.grad is None for p in model.language_model.parameters())
    assert all(p.grad is None and not p.requires_grad for p in model.vision_tower.parameters())
    assert not model.vision_tower.training  # frozen tower stays in eval mode under model.train()


def test_gradient_checkpointing_gives_the_same_gradients():
    config = tiny_config("embedding")
    input_ids = torch.tensor([[config.image_token_id, 5, 6, 7, 8]])
    pixel_values, labels = torch.randn(1, 3, 224, 224), torch.tensor([[-100, -100, 6, 7, 8]])
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(config).train()
        model.set_trainable(projector=True, language_model=True)
        if checkpointing:
            model.activation_checkpointing_enable()
        model(input_ids=input_ids, pixel_values=pixel_values, labels=labels).loss.backward()
        grads.append(model.projector.linear_1.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("image_mode", ["embedding", "patches"])
def test_generate_with_cache_equals_without_and_encodes_the_image_once(image_mode):
    config = tiny_config(image_mode)
    model = tiny_model(config)
    input_ids = torch.tensor([[5, 6] + [config.image_token_id] * config.num_image_tokens + [7, 8]])
    pixel_values = torch.randn(1, 3, 224, 224)
    calls = []
    model.vision_tower.register_forward_hook(lambda *args: calls.append(1))
    kwargs = dict(input_ids=input_ids, pixel_values=pixel_values, max_new_tokens=8, do_sample=False, min_new_tokens=8)
    cached = model.generate(**kwargs)
    assert len(calls) == 1
    uncached = model.generate(**kwargs, use_cache=False)
    assert torch.equal(cached, uncached)


def test_batched_left_padded_generation_equals_one_by_one(make_processor):
    config = tiny_config("patches")
    model = tiny_model(config)
    processor = make_processor(config)
    processor.tokenizer.padding_side = "left"
    questions = ["What shape is this?", "Is there a blue object in the image, and what colour is the background?"]
    prompts = [processor.render([{"role": "user", "content": f"<image>\n{q}"}], add_generation_prompt=True)
               for q in questions]
    images = [random_image(1), random_image(2)]
    generate = dict(max_new_tokens=6, min_new_tokens=6, do_sample=False)
    batch = processor(text=prompts, images=images, padding=True, return_tensors="pt")
    batched = model.generate(**batch, **generate)[:, batch["input_ids"].shape[1]:]
    for row, (prompt, image) in enumerate(zip(prompts, images)):
        single = processor(text=prompt, images=[image], return_tensors="pt")
        alone = model.generate(**single, **generate)[:, single["input_ids"].shape[1]:]
        assert torch.equal(batched[row], alone[0])


def test_default_config_is_the_original_nextgpt():
    config = NextGPTConfig()
    assert config.vision_config.model_type == "imagebind_vision"
    assert (config.vision_config.hidden_size, config.vision_config.num_hidden_layers) == (1280, 32)
    assert config.image_mode == "embedding" and config.projector_type == "linear"
    assert config.num_image_tokens == 1 and config.vision_feature_dim == 1024
    text = config.text_config
    assert (text.model_type, text.hidden_size, text.num_hidden_layers, text.vocab_size) == ("llama", 4096, 32, 32000)
    with torch.device("meta"):
        model = NextGPTForConditionalGeneration(config)
    assert model.projector.linear_1.weight.shape == (4096, 1024)


@pytest.mark.parametrize("image_mode", ["embedding", "patches"])
@pytest.mark.parametrize(
    "vision_config",
    [
        CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         image_size=224, patch_size=32, projection_dim=16).to_dict(),
        SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=224, patch_size=32).to_dict(),
    ],
    ids=["clip", "siglip"],
)
def test_transformers_towers_give_the_announced_token_count(vision_config, image_mode):
    config = tiny_config(image_mode, vision_config=vision_config, projector_type="mlp2x_gelu")
    model = tiny_model(config)
    features = model.encode_images(torch.randn(2, 3, 224, 224))
    assert features.shape == (2, config.num_image_tokens, config.vision_feature_dim)
    input_ids = torch.tensor([[config.image_token_id] * config.num_image_tokens + [5]] * 2)
    assert model(input_ids=input_ids, pixel_values=torch.randn(2, 3, 224, 224)).logits.shape[:2] == input_ids.shape


def test_resize_token_embeddings_and_lora_work():
    from peft import LoraConfig, get_peft_model

    config = tiny_config("embedding")
    model = tiny_model(config)
    vocab_size = config.text_config.vocab_size
    model.resize_token_embeddings(vocab_size + 8, mean_resizing=False)
    assert model.get_input_embeddings().weight.shape[0] == vocab_size + 8
    assert model.get_output_embeddings().weight.shape[0] == vocab_size + 8
    model.set_trainable(projector=True)
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], modules_to_save=["projector"])
    )
    input_ids = torch.tensor([[config.image_token_id, 5, 6]])
    loss = peft_model(input_ids=input_ids, pixel_values=torch.randn(1, 3, 224, 224), labels=input_ids.clamp(max=9)).loss
    loss.backward()
    trainable = {name for name, p in peft_model.named_parameters() if p.requires_grad}
    assert any("lora_A" in name for name in trainable) and any("projector" in name for name in trainable)
    assert not any("vision_tower" in name for name in trainable)


def test_a_model_from_parts_keeps_the_llm_s_generation_config(tmp_path):
    """Llama-3-style chats end turns with a token other than EOS, and LLMs ship sampling defaults: both survive
    assembly and a save/load round trip."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from configuration_nextgpt import ImageBindVisionConfig
    from conftest import TINY_IMAGEBIND, tiny_text_config
    from imagebind_vision import ImageBindVisionModel

    language_model = LlamaForCausalLM(LlamaConfig(**tiny_text_config(vocab_size=64)))
    language_model.generation_config = GenerationConfig(eos_token_id=[2, 7], temperature=0.6, top_p=0.9,
                                                        do_sample=True)
    model = NextGPTForConditionalGeneration.from_parts(
        language_model, ImageBindVisionModel(ImageBindVisionConfig(**TINY_IMAGEBIND)), image_token_id=64)
    model.save_pretrained(tmp_path)
    for loaded in (model, NextGPTForConditionalGeneration.from_pretrained(tmp_path)):
        config = loaded.generation_config
        assert (config.eos_token_id, config.temperature, config.top_p, config.do_sample) == ([2, 7], 0.6, 0.9, True)


def test_a_callers_past_key_values_is_the_cache_used():
    """transformers 5 calls the KV cache `cache`; a caller passing the old `past_key_values=` gets it used (forward
    once passed cache=None beside it, and the language model silently made a new cache)."""
    from transformers.cache_utils import DynamicCache

    config = tiny_config("embedding")
    model = tiny_model(config)
    cache = DynamicCache(config=config.get_text_config())
    output = model(input_ids=torch.tensor([[5, 6, 7, 8]]), past_key_values=cache, use_cache=True)
    assert output.cache is cache and cache.get_seq_length() == 4
