"""Batches of token id lists: padded to the length bucket of their longest, grouped by bucket."""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

# Batches are padded to their longest sequence rounded up to a multiple of this, so that
# one compiled function serves each length bucket instead of one per length.
LENGTH_BUCKET = 8
PAD_ID = 0  # `[PAD]` in every BERT vocabulary; the encoder masks this id


def bucket_length(length: int, max_seq_len: int) -> int:
    """The padded length for a sequence of `length` token ids."""
    rounded_up = -(-length // LENGTH_BUCKET) * LENGTH_BUCKET
    return min(rounded_up, max_seq_len)


def length_batches(
    token_id_lists: Sequence[Sequence[int]],
    batch_size: int,
    max_seq_len: int,
    rng: Optional[np.random.Generator] = None,
) -> List[Tuple[int, np.ndarray]]:
    """`(padded length, row indices)` batches, each of rows of one length bucket.

    With `rng` the rows and batches are shuffled, otherwise they keep their order.
    """
    order = np.arange(len(token_id_lists))
    if rng is not None:
        rng.shuffle(order)
    by_length: Dict[int, List[int]] = {}
    for row in order:
        length = bucket_length(len(token_id_lists[row]), max_seq_len)
        by_length.setdefault(length, []).append(int(row))
    batches = [
        (length, np.asarray(rows[start : start + batch_size]))
        for length, rows in sorted(by_length.items())
        for start in range(0, len(rows), batch_size)
    ]
    if rng is not None:
        batches = [batches[index] for index in rng.permutation(len(batches))]
    return batches


def pad(token_id_lists: Sequence[Sequence[int]], length: int, value: int = PAD_ID) -> np.ndarray:
    """A `[batch, length]` int32 array of the token ids (or tags), padded with `value`."""
    batch = np.full((len(token_id_lists), length), value, dtype=np.int32)
    for row, token_ids in enumerate(token_id_lists):
        batch[row, : len(token_ids)] = token_ids
    return batch
