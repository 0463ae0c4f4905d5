"""BERT WordPiece tokenization of raw message text into padded token id batches."""

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from rasa_bert_intent.quiet import quiet_bert_import

with quiet_bert_import():
    from bert.tokenization.bert_tokenization import FullTokenizer

# Batches are padded to their longest sequence rounded up to a multiple of this, so that
# one compiled function serves each length bucket instead of one per length.
LENGTH_BUCKET = 8
PAD_ID = 0  # `[PAD]` in every BERT vocabulary; the encoder masks this id
OUTSIDE = 0  # the tag of a word piece in no entity
UNTAGGED = -1  # the tag of a position the tagging loss ignores: [CLS], [SEP], padding


class WordPieceTokenizer:
    """Turns texts into `[CLS] … [SEP]` token ids of a BERT vocabulary."""

    def __init__(self, vocab_file: Union[str, Path], do_lower_case: bool) -> None:
        """Loads the vocabulary."""
        self._tokenizer = FullTokenizer(str(vocab_file), do_lower_case=do_lower_case)
        self._cls_id, self._sep_id = self._tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]"])

    def token_ids(self, text: str, max_seq_len: int) -> List[int]:
        """Token ids of one text, truncated to `max_seq_len` including `[CLS]` and `[SEP]`."""
        pieces = self._tokenizer.tokenize(text or "")[: max_seq_len - 2]
        return [
            self._cls_id,
            *self._tokenizer.convert_tokens_to_ids(pieces),
            self._sep_id,
        ]

    def entity_tags(
        self, text: str, entities: Sequence[Dict], tag_of: Dict[str, int], max_seq_len: int
    ) -> Optional[List[int]]:
        """One tag per token id of `token_ids(text)`: `tag_of` an entity's type, or OUTSIDE.

        Entities are Rasa's `{"start", "end", "entity"}` character spans. None when a span
        does not fall on word-piece boundaries (or spans overlap), so the pieces of the
        spans tokenized one by one differ from those of the whole text.
        """
        text = text or ""
        pieces, tags, position = [], [], 0
        for entity in sorted(entities, key=lambda entity: entity["start"]):
            start, end = entity["start"], entity["end"]
            if not position <= start < end <= len(text):
                return None
            before = self._tokenizer.tokenize(text[position:start])
            inside = self._tokenizer.tokenize(text[start:end])
            pieces += before + inside
            tags += [OUTSIDE] * len(before) + [tag_of[entity["entity"]]] * len(inside)
            position = end
        after = self._tokenizer.tokenize(text[position:])
        pieces += after
        tags += [OUTSIDE] * len(after)
        if pieces != self._tokenizer.tokenize(text):
            return None
        return [UNTAGGED, *tags[: max_seq_len - 2], UNTAGGED]


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
