"""Graphed decoder layers (graphed_layers.py): packed micro-batches padded into buckets give the losses and gradients
of the eager layers, accumulated over micro-batches; everything else runs eagerly. On the CPU a replay runs the
recorded function again over the same buffers, so these tests check the buffers, padding and gradient hand-off; the
CUDA graphs themselves are tested on a GPU (test_cuda.py)."""

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from fast_generation import round_up
from graphed_layers import FlatGradients, graph_decoder_layers
from packed_attention import enable_packed_attention
from train_hf import apply_liger_kernels

VOCAB = 96


def random_llama(*, hidden_size: int, layers: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                                        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2))


def packed_lora_llm(*, hidden_size: int, layers: int, rank: int, dropout: float = 0.0,
                    fused: bool = False) -> LlamaForCausalLM:
    """A random Llama with packed attention (and Liger's kernels if `fused`) and LoRA on q/k/v/o."""
    model = random_llama(hidden_size=hidden_size, layers=layers)
    enable_packed_attention(model)
    if fused:
        apply_liger_kernels(model)
    model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=dropout,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero; random values make every gradient non-trivial
            torch.nn.init.normal_(parameter, std=0.1)
    return model


def lora_llm() -> LlamaForCausalLM:
    model = packed_lora_llm(hidden_size=32, layers=3, rank=4)
    model.get_base_model().model.embed_tokens.weight.requires_grad_(True)  # a gradient that crosses every layer
    return model.to(torch.float64).train()


def packed_batch(lengths: list[int], seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    tokens = sum(lengths)
    input_ids = torch.randint(0, VOCAB, (1, tokens), generator=generator)
    labels = input_ids.clone()
    labels[0, torch.tensor([0, *lengths[:-1]]).cumsum(0)] = -100  # each example's first label, as the collator does
    return {"input_ids": input_ids, "labels": labels,
            "position_ids": torch.cat([torch.arange(length) for length in lengths])[None],
            "cu_seq_lens_q": torch.tensor([0, *lengths]).cumsum(0).to(torch.int32), "max_length_q": max(lengths),
            "use_cache": False,  # as NextGPTForConditionalGeneration passes in training
            "num_items_in_batch": (labels != -100).sum()}  # as the Trainer passes, to the loss and every layer


def trainable_grads(model) -> dict[str, torch.Tensor]:
    return {name: parameter.grad.clone() for name, parameter in model.named_parameters() if parameter.requires_grad}


# Micro-batches of one accumulated step: two in one bucket of 64 tokens (different lengths and example counts, the
# second shorter, so the padding holds the first one's states), one in a bucket of 128 with more example slots, for
# which the first bucket goes (the longest is captured first), then one of 64 again, captured after the longest.
MICRO_BATCHES = [[20, 9, 17], [30, 12], [40, 25, 11, 9, 7], [25, 30]]


def test_accumulated_losses_and_gradients_equal_the_eager_layers():
    eager = lora_llm()
    graphed = copy.deepcopy(eager)
    graphs = graph_decoder_layers(graphed.get_base_model(), bucket_tokens=64)
    for seed, lengths in enumerate(MICRO_BATCHES):
        batch = packed_batch(lengths, seed)
        losses = [model(**batch).loss for model in (eager, graphed)]
        for model, loss in zip((eager, graphed), losses):
            loss.backward()
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-12, atol=0)
        expected, actual = trainable_grads(eager), trainable_grads(graphed)
        assert expected.keys() == actual.keys() and len(expected) == 3 * 8 + 1
        for name in expected:
            torch.testing.assert_close(actual[name], expected[name], rtol=1e-10, atol=1e-12, msg=name)
        buckets = [(key[0], key[1]) for key in graphs.buckets]
        assert buckets == [[(64, 4)], [(64, 4)], [(128, 8)], [(128, 8), (64, 4)]][seed]
    assert graphs.replayed_forwards == 4 and not graphs.eager_calls
    assert graphs.storage[0].shape[1] == 128


@pytest.mark.parametrize("autocast", [False, True], ids=["float64", "float32_under_bf16_autocast"])
def test_frozen_layers_as_in_stage_1_pass_the_gradient_through(autocast):
    """Stage 1: the layers have nothing to train, but the gradient crosses them to what comes before (here the
    embeddings; in NextGPT the projector). Also float32 weights under bf16 autocast, the default model's recipe."""
    eager = random_llama(hidden_size=32, layers=3)
    enable_packed_attention(eager)
    eager.requires_grad_(False)
    eager.model.embed_tokens.weight.requires_grad_(True)
    eager = eager.to(torch.float32 if autocast else torch.float64).train()
    graphed = copy.deepcopy(eager)
    graphs = graph_decoder_layers(graphed, bucket_tokens=64)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        for seed, lengths in enumerate(MICRO_BATCHES[:2]):
            losses = [model(**packed_batch(lengths, seed)).loss for model in (eager, graphed)]
            for loss in losses:
                loss.backward()
            torch.testing.assert_close(losses[1], losses[0], rtol=1e-2 if autocast else 1e-12, atol=0)
    grads = [model.model.embed_tokens.weight.grad for model in (eager, graphed)]
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=2e-2 if autocast else 1e-10, atol=1e-4 if autocast else 1e-12)
    assert graphs.replayed_forwards == 2 and not any(graphs.trainable)


def test_gradients_reach_autograd_in_fresh_tensors():
    """AccumulateGrad keeps the first micro-batch's gradient tensor as `.grad`; were it the bucket's own buffer, the
    second micro-batch's replay would overwrite it before adding to it (pytorch/pytorch#181723)."""
    model = lora_llm()
    graphs = graph_decoder_layers(model.get_base_model(), bucket_tokens=64)
    batch = packed_batch(MICRO_BATCHES[0], 0)
    model(**batch).loss.backward()
    once = trainable_grads(model)
    model(**batch).loss.backward()
    for name, grad in trainable_grads(model).items():
        torch.testing.assert_close(grad, 2 * once[name], rtol=1e-12, atol=0, msg=name)
    bucket = next(iter(graphs.buckets.values()))
    buffers = {buffer.data_ptr() for flat in bucket.flat_gradients for buffer in flat.buffers.values()}
    assert not buffers & {p.grad.data_ptr() for p in model.parameters() if p.grad is not None}


def test_a_backward_after_the_next_forward_raises():
    model = lora_llm()
    graph_decoder_layers(model.get_base_model(), bucket_tokens=64)
    first = model(**packed_batch(MICRO_BATCHES[0], 0)).loss
    model(**packed_batch(MICRO_BATCHES[1], 1)).loss.backward()
    with pytest.raises(RuntimeError, match="overwritten"):
        first.backward()


def test_evaluation_padded_batches_and_too_many_shapes_run_eagerly():
    eager = lora_llm()
    graphed = copy.deepcopy(eager)
    graphs = graph_decoder_layers(graphed.get_base_model(), bucket_tokens=16, max_buckets=1)
    batch = packed_batch(MICRO_BATCHES[0], 0)
    with torch.no_grad():
        torch.testing.assert_close(graphed(**batch).logits, eager(**batch).logits, rtol=0, atol=0)
    padded = {"input_ids": batch["input_ids"][:, :30], "attention_mask": torch.ones(1, 30, dtype=torch.long)}
    torch.testing.assert_close(graphed(**padded).logits, eager(**padded).logits, rtol=0, atol=0)
    graphed(**packed_batch([10], 1))  # the one bucket held: 16 tokens
    graphed(**batch)  # 46 tokens: longer, so it takes the place of the first (48 tokens)
    short = packed_batch([20], 2)  # 32 tokens: neither held nor the longest
    loss = graphed(**short).loss
    loss.backward()
    torch.testing.assert_close(loss, eager(**short).loss, rtol=1e-12, atol=0)
    assert graphs.replayed_forwards == 2 and [key[:2] for key in graphs.buckets] == [(48, 4)]
    assert graphs.eager_calls == {"not training": 1, "not a packed batch": 1, "more than 1 packed shapes": 1}
    assert "2 forwards replayed (buckets: 48 tokens x 4 examples; captured in" in graphs.summary()


@pytest.mark.parametrize("strict", [False, True])
def test_a_failed_capture_warns_and_runs_eagerly_unless_strict(monkeypatch, strict):
    from graphed_layers import Bucket

    def fail(self, pool, warm_up):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    monkeypatch.setattr(Bucket, "record", fail)
    eager = lora_llm()
    graphed = copy.deepcopy(eager)
    graphs = graph_decoder_layers(graphed.get_base_model(), bucket_tokens=64, strict=strict)
    batch = packed_batch(MICRO_BATCHES[0], 0)
    if strict:
        with pytest.raises(RuntimeError, match="not permitted"):
            graphed(**batch)
        return
    with pytest.warns(UserWarning, match="capture failed: RuntimeError: operation not permitted when stream is "
                                         "capturing; the layers run eagerly from now on"):
        first = graphed(**batch).loss
    second = graphed(**batch).loss
    torch.testing.assert_close(second, first, rtol=0, atol=0)
    torch.testing.assert_close(first, eager(**batch).loss, rtol=1e-12, atol=0)
    reason = "capture failed: RuntimeError: operation not permitted when stream is capturing"
    assert graphs.eager_calls == {reason: 2} and not graphs.buckets and not graphs.replayed_forwards


def test_moved_weights_are_captured_again_and_removal_restores_the_layers():
    model = lora_llm()
    keys = list(model.state_dict())
    layers = model.get_base_model().model.layers
    graphs = graph_decoder_layers(model.get_base_model(), bucket_tokens=64)
    assert "forward" in vars(layers[0]) and list(model.state_dict()) == keys
    batch = packed_batch(MICRO_BATCHES[0], 0)
    model(**batch).loss.backward()
    first = next(iter(graphs.buckets.values()))
    weight = layers[1].mlp.up_proj.weight
    weight.data = weight.data.clone()  # a graph would still read the old address
    model(**batch).loss.backward()
    assert len(graphs.buckets) == 1 and next(iter(graphs.buckets.values())) is not first
    second = next(iter(graphs.buckets.values()))
    down = layers[2].mlp.down_proj  # a frozen weight replaced by a new tensor of the same values
    down.weight = torch.nn.Parameter(down.weight.detach().clone(), requires_grad=False)
    model(**batch).loss.backward()
    assert len(graphs.buckets) == 1 and next(iter(graphs.buckets.values())) is not second
    graphs.remove()
    assert "forward" not in vars(layers[0]) and not graphs.buckets


def test_flat_gradients_keep_each_dtype_and_shape():
    parameters = [torch.nn.Parameter(torch.zeros(2, 3)), torch.nn.Parameter(torch.zeros(4, dtype=torch.float64)),
                  torch.nn.Parameter(torch.zeros(5))]
    flat = FlatGradients(parameters)
    gradients = [torch.randn_like(parameter) for parameter in parameters]
    flat.write(gradients)
    fresh = flat.fresh()
    for expected, actual in zip(gradients, fresh):
        assert actual.dtype == expected.dtype and torch.equal(actual, expected)
    assert fresh[0].data_ptr() not in {buffer.data_ptr() for buffer in flat.buffers.values()}


def test_train_hf_installs_graphs_where_they_work_and_names_what_stops_them(monkeypatch, tmp_path):
    from transformers import TrainingArguments

    from train_hf import NextGPTArguments, install_graphed_layers

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    plain = TrainingArguments(output_dir=str(tmp_path))
    checkpointing = TrainingArguments(output_dir=str(tmp_path), gradient_checkpointing=True)

    def install(training=plain, **options):
        args = NextGPTArguments(stage=2, data_path="data.json", **options)
        return install_graphed_layers(lora_llm().get_base_model(), args, training)

    assert install() is None
    with pytest.raises(ValueError, match="--graphed_layers true does not work in this run: they need a CUDA GPU"):
        install(graphed_layers="true")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    graphs = install(graph_bucket_tokens=128)
    assert graphs is not None and graphs.bucket_tokens == 128
    assert install(full_finetune=True) is None and install(graphed_layers="false") is None
    assert install(graphed_layers="true", full_finetune=True) is not None
    with pytest.raises(ValueError, match="gradient checkpointing"):
        install(checkpointing, graphed_layers="true")
    with pytest.raises(ValueError, match="packed batches"):
        install(graphed_layers="true", packing=False)


def test_a_model_without_packed_attention_is_refused():
    with pytest.raises(ValueError, match="packed"):
        graph_decoder_layers(random_llama(hidden_size=32, layers=1))


def cuda_lora_llm(fused: bool, dropout: float = 0.0) -> LlamaForCausalLM:
    """train_hf's recipe on the GPU: bf16 frozen weights, float32 trainable ones (used under bf16 autocast), Liger's
    kernels where asked."""
    model = packed_lora_llm(hidden_size=128, layers=4, rank=8, dropout=dropout, fused=fused)
    model = model.cuda().to(torch.bfloat16).train()
    for parameter in model.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.float()
    return model


def cuda_loss(model, batch: dict) -> torch.Tensor:
    with torch.autocast("cuda", dtype=torch.bfloat16):
        return model(**{key: value.cuda() if torch.is_tensor(value) else value for key, value in batch.items()}).loss


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("fused", [False, True], ids=["plain", "liger"])
def test_cuda_graphs_give_the_eager_losses_and_gradients_on_cuda(fused):
    """Captured CUDA graphs, replayed: losses and gradients accumulated over micro-batches of three buckets (the first
    reused, then dropped for a longer one and captured again after it) within bf16 rounding of the eager layers' (the
    padding changes the products' shapes); an optimizer step in between changes the weights the graphs read."""
    if fused:
        pytest.importorskip("liger_kernel")
    eager, graphed = cuda_lora_llm(fused), cuda_lora_llm(fused)
    graphs = graph_decoder_layers(graphed.get_base_model(), bucket_tokens=256)
    trainable = {name: parameter for name, parameter in eager.named_parameters() if parameter.requires_grad}
    for step, lengths in enumerate([[200, 90, 170], [300, 120], [400, 250, 110, 90, 70], [150, 300]]):
        batch = packed_batch(lengths, step)
        losses = [cuda_loss(model, batch) for model in (eager, graphed)]
        for loss in losses:
            loss.backward()
        torch.testing.assert_close(losses[1], losses[0], rtol=2e-3, atol=0)
        expected, actual = trainable_grads(eager), trainable_grads(graphed)
        for name in expected:
            error = (actual[name] - expected[name]).norm() / expected[name].norm()
            assert error < 2e-2, (step, name, error.item())
        if step == 1:  # an optimizer step: both models' trainable weights move in place
            for model in (eager, graphed):
                with torch.no_grad():
                    for parameter in model.parameters():
                        if parameter.requires_grad:
                            parameter -= 1e-2 * parameter.grad
                            parameter.grad = None
    assert len(trainable) == 4 * 8
    assert graphs.replayed_forwards == 4 and not graphs.eager_calls
    # 460 and 420 tokens: one bucket of 512; 920: 1,024, for which the first went; 450: 512 again.
    assert [(key[0], key[1]) for key in graphs.buckets] == [(1024, 8), (512, 4)]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_dropout_draws_new_masks_at_every_replay_on_cuda():
    model = cuda_lora_llm(fused=False, dropout=0.5)
    graph_decoder_layers(model.get_base_model(), bucket_tokens=256)
    batch = packed_batch([200, 90, 170], 0)
    losses = []
    for _ in range(3):
        loss = cuda_loss(model, batch)
        loss.backward()
        losses.append(loss.item())
    assert len(set(losses)) == 3, losses
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_under_ddp_the_accumulated_gradients_are_the_eager_ones_on_cuda(tmp_path):
    """DDP keeps the parameters' gradient accumulators, made on the default stream, which a capture must not wait on
    (the recording takes gradients for fresh leaves instead); its hooks all-reduce what the replays hand back. One
    process, two micro-batches accumulated (the first under no_sync)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("nccl", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        eager = cuda_lora_llm(fused=False)
        graphed = cuda_lora_llm(fused=False)
        graph_decoder_layers(graphed.get_base_model(), bucket_tokens=256)
        wrapped = DistributedDataParallel(graphed, device_ids=[0])
        batches = [packed_batch([200, 90, 170], 0), packed_batch([300, 120, 40], 1)]
        with wrapped.no_sync():
            cuda_loss(wrapped, batches[0]).backward()
        cuda_loss(wrapped, batches[1]).backward()
        for batch in batches:
            cuda_loss(eager, batch).backward()
        expected, actual = trainable_grads(eager), trainable_grads(graphed)
        for name in expected:
            error = (actual[name] - expected[name]).norm() / expected[name].norm()
            assert error < 2e-2, (name, error.item())
    finally:
        dist.destroy_process_group()


def test_a_bucket_is_the_next_multiple_of_the_bucket_tokens():
    assert [round_up(tokens, 256) for tokens in (1, 255, 256, 257, 2250)] == [256, 256, 256, 512, 2304]
