"""generation_queue.py's pieces: left-padded batches from single prompts, and rows cut at their end."""

import pytest
import torch

from generation_queue import GenerationCancelled, GenerationQueue, Job, RowStreamers, left_padded_batch


def test_prompts_are_padded_on_the_left_and_images_kept_in_row_order():
    short = {"input_ids": torch.tensor([[5, 6]]), "attention_mask": torch.ones(1, 2, dtype=torch.long),
             "pixel_values": torch.zeros(1, 3, 4, 4)}
    text_only = {"input_ids": torch.tensor([[7, 8, 9, 10]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    two_images = {"input_ids": torch.tensor([[1, 2, 3]]), "attention_mask": torch.ones(1, 3, dtype=torch.long),
                  "pixel_values": torch.ones(2, 3, 4, 4)}
    batch = left_padded_batch([short, text_only, two_images], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[0, 0, 5, 6], [7, 8, 9, 10], [0, 1, 2, 3]]
    assert batch["attention_mask"].tolist() == [[0, 0, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1]]
    assert batch["pixel_values"][:, 0, 0, 0].tolist() == [0, 1, 1]


def test_rows_end_at_their_end_token_or_before_their_padding():
    queue = GenerationQueue(generate=None, device=torch.device("cpu"), pad_token_id=0, end_ids={2})
    assert queue._trim([5, 6, 2, 0, 0]) == [5, 6, 2]
    assert queue._trim([5, 6, 0, 0]) == [5, 6]  # a stop string ended the row, then padding
    assert queue._trim([5, 0, 6, 7]) == [5, 0, 6, 7]  # a padding id inside the answer is a token like any other
    assert queue._trim([5, 6, 7]) == [5, 6, 7]


def test_only_jobs_with_the_same_options_and_no_seed_share_a_batch():
    inputs = {}
    greedy = Job(inputs, {"max_new_tokens": 4, "seed": None})
    assert greedy.batch_key() == Job(inputs, {"max_new_tokens": 9, "seed": None}).batch_key()
    assert greedy.batch_key() != Job(inputs, {"max_new_tokens": 4, "seed": None, "stop_strings": ["x"]}).batch_key()
    assert Job(inputs, {"max_new_tokens": 4, "seed": 3}).batch_key() is None
    assert Job(inputs, {"max_new_tokens": 4, "seed": None}, streamed=True).batch_key() == greedy.batch_key()


def streamed_pieces(job: Job) -> list:
    return list(iter(job.pieces.get_nowait, None))


def test_row_streamers_give_each_row_its_tokens_and_end_it_at_its_own_end():
    jobs = [Job({}, {"max_new_tokens": 5}, streamed=True), Job({}, {"max_new_tokens": 2}, streamed=True),
            Job({}, {"max_new_tokens": 5}, streamed=True), Job({}, {"max_new_tokens": 5})]  # the last: not streamed
    streamers = RowStreamers(jobs, end_ids={2})
    streamers.put(torch.tensor([[1, 9], [1, 8], [1, 7], [1, 6]]))  # the prompts: not streamed
    for step in ([5, 5, 5, 5], [2, 6, 6, 6], [0, 7, 7, 7]):  # row 0 ends with token 2, row 1 after 2 tokens
        streamers.put(torch.tensor(step))
        jobs[2].cancelled.set()  # row 2's client leaves after its first token
    assert streamed_pieces(jobs[0]) == [[5], [2]] and jobs[0].stream_ended
    assert streamed_pieces(jobs[1]) == [[5], [6]] and jobs[1].stream_ended
    assert jobs[2].pieces.get_nowait() == [5] and jobs[2].pieces.empty()  # no more tokens once its client left
    assert jobs[3].pieces.empty()
    streamers.end()
    assert all(job.stream_ended for job in jobs)


def test_a_batch_whose_clients_all_left_stops():
    job = Job({}, {"max_new_tokens": 5}, streamed=True)
    streamers = RowStreamers([job], end_ids=set())
    streamers.put(torch.tensor([[1]]))
    job.cancelled.set()
    with pytest.raises(GenerationCancelled):
        streamers.put(torch.tensor([4]))
