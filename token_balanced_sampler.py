"""`--train_sampling_strategy batch_rebalance` for packed micro-batches: equal real tokens on every GPU.

transformers' `BatchRebalanceSampler` deals each global batch to the GPUs as micro-batches of equal *padded* cost
(examples x longest example), which is what a padded batch costs. A packed micro-batch (`--packing`, the default)
costs its real tokens instead, so that sampler leaves a GPU holding more tokens than another waiting at every
gradient all-reduce (its ceiling at 4 GPUs, global batch 128: 92%, the same as random sampling; `bench_train.py
balance`). This one keeps the global batches (the same shuffle) and fills the GPUs x accumulation-steps micro-batches
by tokens, longest example first into the emptiest micro-batch, so every micro-batch holds about the same number of
tokens (micro-batches may then differ in their number of examples; the loss is normalised by the global batch's label
tokens, so that changes nothing). Attention's quadratic share is left out of the cost: at LLaVA-like lengths it is
under 1% of a 7B layer's work (length / (12 x hidden size)).
"""

import heapq

from transformers.trainer_pt_utils import BatchRebalanceSampler


class TokenBalancedSampler(BatchRebalanceSampler):
    """A `BatchRebalanceSampler` (same arguments, shuffle and global batches) whose micro-batches hold equal tokens."""

    @classmethod
    def like(cls, sampler: BatchRebalanceSampler) -> "TokenBalancedSampler":
        """The token-balanced sampler over the same data, batches, ranks and seed as `sampler`."""
        return cls(sampler.lengths, sampler.effective_batch_size, sampler.dp_size, sampler.grad_accum,
                   shuffle=sampler.shuffle, seed=sampler.seed, rank=sampler.rank, drop_last=sampler.drop_last)

    def _assign(self, indices: list[int], lengths: list[int]) -> list[list[list[int]]]:
        """Each rank's micro-batches (one per accumulation step) of one global batch; slot k of every rank gets one
        of the k-th largest micro-batches, as the base class deals them."""
        count = self.dp_size * self.grad_accum
        micro_batches = [[] for _ in range(count)]
        emptiest = [(0, group) for group in range(count)]  # (tokens, micro-batch), a heap
        for index, length in sorted(zip(indices, lengths), key=lambda pair: -pair[1]):
            tokens, group = heapq.heappop(emptiest)
            micro_batches[group].append(index)
            heapq.heappush(emptiest, (tokens + length, group))
        by_tokens = [micro_batches[group] for _, group in sorted(emptiest, reverse=True)]
        return [[by_tokens[slot * self.dp_size + rank] for slot in range(self.grad_accum)]
                for rank in range(self.dp_size)]
