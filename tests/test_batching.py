"""Length buckets, padding and batches of one bucket."""

import numpy as np

from rasa_bert_intent.batching import bucket_length, length_batches, pad

CLS, SEP = 101, 102  # in the BERT uncased vocabulary


def test_bucket_lengths_round_up_to_multiples_of_8_but_not_past_max_seq_len():
    assert [bucket_length(n, 64) for n in (2, 8, 9, 16, 17, 64)] == [8, 8, 16, 16, 24, 64]
    assert bucket_length(37, 37) == 37
    assert bucket_length(30, 30) == 30


def test_padding_fills_with_zeros_to_the_given_length():
    batch = pad([[CLS, 7, SEP], [CLS, SEP]], 8)
    assert batch.dtype == np.int32 and batch.shape == (2, 8)
    assert batch.tolist() == [[CLS, 7, SEP, 0, 0, 0, 0, 0], [CLS, SEP, 0, 0, 0, 0, 0, 0]]


def test_length_batches_hold_each_row_once_in_batches_of_one_bucket():
    lengths = [3, 12, 5, 20, 9, 4, 17, 8, 2, 30]
    token_id_lists = [[CLS] * length for length in lengths]
    for rng in (None, np.random.default_rng(0)):
        batches = length_batches(token_id_lists, batch_size=2, max_seq_len=24, rng=rng)
        rows = [row for _length, batch in batches for row in batch]
        assert sorted(rows) == list(range(len(lengths)))
        for length, batch in batches:
            assert 1 <= len(batch) <= 2
            assert {bucket_length(lengths[row], 24) for row in batch} == {length}
    in_order = length_batches(token_id_lists, batch_size=2, max_seq_len=24)
    assert [length for length, _batch in in_order] == sorted(length for length, _batch in in_order)
