"""Padding-free packing: a packed micro-batch trains each example exactly as that example alone would."""

import pytest
import torch

from conftest import random_image, tiny_config, tiny_model
from fast_generation import round_up
from packed_attention import enable_packed_attention
from processing_nextgpt import IGNORE_INDEX
from training_data import NextGPTCollator

CONVERSATIONS = [
    [{"role": "user", "content": "<image>\nWhat is it?"}, {"role": "assistant", "content": "A red triangle."}],
    [{"role": "user", "content": "Describe the picture <image> in a few words, please."},
     {"role": "assistant", "content": "Blue circle on white."}, {"role": "user", "content": "Is it large?"},
     {"role": "assistant", "content": "No, it is small."}],
    [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "Hi! How can I help?"}],
]


@pytest.fixture(params=["embedding", "patches"])
def setup(request, make_processor):
    config = tiny_config(request.param)
    model = tiny_model(config).double()
    enable_packed_attention(model.language_model)
    processor = make_processor(config)
    examples = []
    for seed, messages in enumerate(CONVERSATIONS):
        images = [random_image(seed)] * sum(m["content"].count("<image>") for m in messages)
        tokens = processor.tokenize_conversation(messages, len(images))
        examples.append({"images": images, "input_ids": tokens["input_ids"], "labels": tokens["labels"]})
    return model, processor, examples


def double(batch: dict) -> dict:
    return {key: value.double() if torch.is_tensor(value) and value.is_floating_point() else value
            for key, value in batch.items()}


def test_collator_packs_one_row_with_restarting_positions(setup):
    _, processor, examples = setup
    batch = NextGPTCollator(processor, pack=True)(examples)
    lengths = [len(example["input_ids"]) for example in examples]
    assert batch["input_ids"].shape == batch["labels"].shape == batch["position_ids"].shape == (1, sum(lengths))
    assert "attention_mask" not in batch
    assert batch["cu_seq_lens_q"].tolist() == [0, lengths[0], lengths[0] + lengths[1], sum(lengths)]
    assert batch["max_length_q"] == max(lengths)
    for example, start, end in zip(examples, batch["cu_seq_lens_q"][:-1], batch["cu_seq_lens_q"][1:]):
        assert batch["input_ids"][0, start:end].tolist() == example["input_ids"]
        assert batch["position_ids"][0, start:end].tolist() == list(range(end - start))
        # The first label is masked (it would be predicted from the previous example); the rest are the example's own.
        assert batch["labels"][0, start].item() == IGNORE_INDEX
        assert batch["labels"][0, start + 1:end].tolist() == example["labels"][1:]
    assert batch["pixel_values"].shape[0] == sum(len(example["images"]) for example in examples)


def test_a_packed_row_padded_to_a_multiple_trains_as_the_row_alone(setup):
    """pad_to_multiple_of ends the row with one more example of padding tokens, none of them in the loss: the loss
    and gradients are those of the unpadded row; a row already at a multiple is left as it is."""
    model, processor, examples = setup
    plain = NextGPTCollator(processor, pack=True)(examples)
    length = plain["input_ids"].shape[1]
    batch = NextGPTCollator(processor, pack=True, pad_to_multiple_of=64)(examples)
    padded = round_up(length, 64)
    assert padded > length and batch["input_ids"].shape == batch["labels"].shape == (1, padded)
    assert batch["cu_seq_lens_q"].tolist() == plain["cu_seq_lens_q"].tolist() + [padded]
    assert batch["max_length_q"] == max(plain["max_length_q"], padded - length)
    assert batch["input_ids"][0, length:].eq(processor.tokenizer.pad_token_id).all()
    assert batch["labels"][0, length:].eq(IGNORE_INDEX).all()
    assert batch["position_ids"][0, length:].tolist() == list(range(padded - length))
    for key in ("input_ids", "labels", "position_ids"):
        assert torch.equal(batch[key][:, :length], plain[key])
    plain_loss, plain_grads = summed_loss_and_gradients(model, plain)
    loss, grads = summed_loss_and_gradients(model, batch)
    torch.testing.assert_close(loss, plain_loss, rtol=1e-12, atol=0)
    assert grads.keys() == plain_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, plain_grads[name], rtol=1e-9, atol=1e-12, msg=name)
    exact = NextGPTCollator(processor, pack=True, pad_to_multiple_of=length)(examples)
    assert exact["cu_seq_lens_q"].tolist() == plain["cu_seq_lens_q"].tolist()


def test_packed_examples_do_not_see_each_other(setup):
    model, processor, examples = setup
    collate = NextGPTCollator(processor, pack=True)
    with torch.no_grad():
        packed = model(**double(collate(examples))).logits[0]
        bounds = collate(examples)["cu_seq_lens_q"].tolist()
        for example, start, end in zip(examples, bounds, bounds[1:]):
            alone = model(**double(NextGPTCollator(processor)([example]))).logits[0]
            torch.testing.assert_close(packed[start:end], alone, rtol=1e-9, atol=1e-9)
        # Changing the middle example's text tokens leaves the others' logits untouched.
        middle = [token if token == processor.image_token_id else 7 for token in examples[1]["input_ids"]]
        changed = [examples[0], {**examples[1], "input_ids": middle}, examples[2]]
        repacked = model(**double(collate(changed))).logits[0]
    for start, end in ((bounds[0], bounds[1]), (bounds[2], bounds[3])):
        torch.testing.assert_close(repacked[start:end], packed[start:end], rtol=0, atol=0)


def summed_loss_and_gradients(model, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss summed over the batch's supervised tokens and its gradients for every weight."""
    model.zero_grad()
    model.requires_grad_(True)
    model.vision_tower.requires_grad_(False)
    supervised = (batch["labels"][:, 1:] != IGNORE_INDEX).sum()
    loss = model(**double(batch)).loss * supervised
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_packed_loss_and_gradients_equal_the_examples_alone(setup):
    model, processor, examples = setup
    packed_loss, packed_grads = summed_loss_and_gradients(model, NextGPTCollator(processor, pack=True)(examples))
    total_loss, total_grads = 0, {}
    for example in examples:
        loss, grads = summed_loss_and_gradients(model, NextGPTCollator(processor)([example]))
        total_loss = total_loss + loss
        for name, grad in grads.items():
            total_grads[name] = total_grads.get(name, 0) + grad
    # transformers computes the loss in float32 whatever the logits' dtype: float32 rounding, not float64's.
    torch.testing.assert_close(packed_loss, total_loss, rtol=1e-6, atol=0)
    assert packed_grads.keys() == total_grads.keys() and "projector.linear_1.weight" in packed_grads
    for name, grad in packed_grads.items():
        torch.testing.assert_close(grad, total_grads[name], rtol=1e-5, atol=1e-7, msg=name)


def test_packed_batches_skip_transformers_mask_building(setup, monkeypatch):
    """transformers would build a tokens x tokens mask for a packed batch, after reading its positions off the device
    (find_packed_sequence_indices), and packed attention would ignore it: packed batches build none, with the same
    logits as with the mask built."""
    import transformers.masking_utils as masking_utils

    model, processor, examples = setup
    packed = double(NextGPTCollator(processor, pack=True)(examples)) | {"use_cache": False}  # as in training
    calls = []
    find = masking_utils.find_packed_sequence_indices
    monkeypatch.setattr(masking_utils, "find_packed_sequence_indices",
                        lambda *args, **kwargs: calls.append(len(calls)) or find(*args, **kwargs))
    with torch.no_grad():
        without_mask = model(**packed).logits
        assert calls == []
        model.language_model.packed_mask_hook.remove()
        model.language_model.packed_mask_hook = None
        with_mask = model(**packed).logits
        assert calls == [0]
    torch.testing.assert_close(without_mask, with_mask, rtol=0, atol=0)


def test_padded_batches_still_work_with_packed_attention_enabled(setup):
    """Generation and padded evaluation go through SDPA with their mask: the same logits as without packing."""
    model, processor, examples = setup
    batch = double(NextGPTCollator(processor)(examples))
    with torch.no_grad():
        with_packing = model(**batch).logits
        model.language_model.set_attn_implementation("sdpa")
        plain = model(**batch).logits
    torch.testing.assert_close(with_packing, plain, rtol=0, atol=0)


def test_batch_rebalance_with_packing_deals_every_gpu_equal_tokens(tmp_path):
    """With packing, train_hf.py's Trainer swaps transformers' batch_rebalance sampler (equal padded cost) for the
    token-balanced one: the same global batches (same shuffle), every example once, and each (rank, accumulation
    step) micro-batch within one example's length of the others, where transformers' sampler leaves them far apart."""
    import random

    from transformers import TrainingArguments
    from transformers.trainer_pt_utils import BatchRebalanceSampler

    from token_balanced_sampler import TokenBalancedSampler
    from train_hf import NextGPTTrainer

    rng = random.Random(0)
    lengths = [rng.randint(40, 660) for _ in range(512)]
    ranks, accumulation, global_batch = 4, 2, 64

    def plan(sampler_class):
        samplers = [sampler_class(lengths, global_batch, ranks, accumulation, rank=rank) for rank in range(ranks)]
        dealt = [list(sampler) for sampler in samplers]
        return [[dealt[rank][step * accumulation + slot] for rank in range(ranks) for slot in range(accumulation)]
                for step in range(len(lengths) // global_batch)]

    balanced, padded_cost = plan(TokenBalancedSampler), plan(BatchRebalanceSampler)
    for step, (ours, theirs) in enumerate(zip(balanced, padded_cost)):
        assert sorted(i for micro in ours for i in micro) == sorted(i for micro in theirs for i in micro), step
        tokens = [sum(lengths[i] for i in micro) for micro in ours]
        assert max(tokens) - min(tokens) <= max(lengths)
    assert sorted(i for step in balanced for micro in step for i in micro) == list(range(512))
    spread = [max(sum(lengths[i] for i in m) for m in step) / min(sum(lengths[i] for i in m) for m in step)
              for step in padded_cost]
    assert max(spread) > 1.3  # what the padded-cost sampler leaves with packed micro-batches

    trainer = object.__new__(NextGPTTrainer)
    trainer.args = TrainingArguments(output_dir=str(tmp_path), train_sampling_strategy="batch_rebalance",
                                     per_device_train_batch_size=8, gradient_accumulation_steps=2, use_cpu=True)
    trainer.train_dataset = [{"input_ids": [0] * length} for length in lengths]
    trainer.processing_class = None
    for pack, expected in ((True, TokenBalancedSampler), (False, BatchRebalanceSampler)):
        trainer.data_collator = NextGPTCollator(processor=None, pack=pack)
        assert type(trainer._get_train_sampler()) is expected


@pytest.mark.parametrize("autocast", [True, False])
def test_a_float32_model_under_autocast_takes_the_varlen_kernel_in_half_precision(monkeypatch, autocast):
    """The default model trains float32 weights under bf16 autocast. Its queries reach the attention in float32 (the
    rotary embedding upcasts them); the varlen kernel must still take them, in autocast's dtype, instead of one SDPA
    call per example and layer. Here on the CPU, with the kernel's device and the kernel itself stood in for."""
    import torch.nn.functional as F
    from transformers import LlamaConfig, LlamaForCausalLM

    import packed_attention

    calls = []

    def varlen(query, key, value, cu_seq_lens, _cu_k, _max_q, _max_k, scale=None, **causal):
        calls.append({query.dtype, key.dtype, value.dtype})
        bounds = cu_seq_lens.tolist()
        return torch.cat([F.scaled_dot_product_attention(
            *(tensor[start:end].transpose(0, 1) for tensor in (query, key, value)), is_causal=True, scale=scale
        ).transpose(0, 1) for start, end in zip(bounds, bounds[1:])])

    monkeypatch.setattr(packed_attention, "VARLEN_DEVICE", "cpu")
    monkeypatch.setattr(packed_attention, "varlen_attn", varlen)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2))
    enable_packed_attention(model)
    lengths = [7, 3, 12]
    bounds = torch.tensor([0, *lengths]).cumsum(0).to(torch.int32)
    positions = torch.cat([torch.arange(length) for length in lengths])[None]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        model(torch.randint(0, 64, (1, sum(lengths))), position_ids=positions, cu_seq_lens_q=bounds,
              max_length_q=max(lengths))
    assert calls == ([{torch.bfloat16}] * 2 if autocast else [])
