"""BERT WordPiece tokenization of raw message text into padded token id batches."""

import functools
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from rasa_bert_intent.quiet import quiet_bert_import

with quiet_bert_import():
    from bert.tokenization.bert_tokenization import (
        FullTokenizer,
        _is_control,
        _is_punctuation,
        _is_whitespace,
    )

# Batches are padded to their longest sequence rounded up to a multiple of this, so that
# one compiled function serves each length bucket instead of one per length.
LENGTH_BUCKET = 8
PAD_ID = 0  # `[PAD]` in every BERT vocabulary; the encoder masks this id
UNTAGGED = -1  # the tag of a position the tagging loss ignores: all but each word's first piece
# Bounds of the tokenizer's memos: distinct characters, distinct words, and the longest word
# memoised (longer ones are rare and would hold memory).
CACHED_CHARACTERS = 4096
CACHED_WORDS = 16384
MAX_CACHED_WORD = 40


@dataclass
class Encoding:
    """One text as the encoder sees it, and the words its word pieces come from."""

    token_ids: List[int]  # [CLS], the word pieces, [SEP]
    words: List[Tuple[int, int]]  # (start, end) character offsets of every word in the text
    # Index in token_ids of each word's first piece, for the words truncation left in.
    first_pieces: List[int]


class WordPieceTokenizer:
    """Turns texts into `[CLS] … [SEP]` token ids of a BERT vocabulary, keeping word offsets."""

    def __init__(self, vocab_file: Union[str, Path], do_lower_case: bool) -> None:
        """Loads the vocabulary."""
        self.vocab_file = Path(vocab_file)
        self._tokenizer = FullTokenizer(str(vocab_file), do_lower_case=do_lower_case)
        self.do_lower_case = do_lower_case
        self._is_cjk = self._tokenizer.basic_tokenizer._is_chinese_char
        self._cls_id, self._sep_id = self._tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]"])
        # Memoised: a character's kind took 2 µs to judge, a word's pieces 20 µs to find,
        # and messages repeat both. The bounds keep hostile input from growing them.
        self._char_kind = functools.lru_cache(maxsize=CACHED_CHARACTERS)(self._judge_char)
        self._cached_pieces = functools.lru_cache(maxsize=CACHED_WORDS)(self._tokenizer.tokenize)

    def token_ids(self, text: str, max_seq_len: int) -> List[int]:
        """Token ids of one text, truncated to `max_seq_len` including `[CLS]` and `[SEP]`."""
        return self.encode(text, max_seq_len).token_ids

    def encode(self, text: str, max_seq_len: int) -> Encoding:
        """The token ids of `text` and its words; the ids are `FullTokenizer`'s, word by word."""
        text = text or ""
        words = self.words(text)
        pieces: List[str] = []
        first_pieces = []
        for start, end in words:
            word_pieces = self._word_pieces(text[start:end])
            if len(pieces) + len(word_pieces) > max_seq_len - 2:
                pieces += word_pieces  # cut below; the word gets no first piece
                break
            first_pieces.append(1 + len(pieces))
            pieces += word_pieces
        token_ids = [
            self._cls_id,
            *self._tokenizer.convert_tokens_to_ids(pieces[: max_seq_len - 2]),
            self._sep_id,
        ]
        return Encoding(token_ids, words, first_pieces)

    def _word_pieces(self, word: str) -> List[str]:
        """`FullTokenizer.tokenize(word)` for one of `words`' words."""
        if len(word) <= MAX_CACHED_WORD:
            return self._cached_pieces(word)
        # Each letter of a word stays at least one character after normalising, so a word of
        # more letters than WordPiece takes is its unknown token: no need to normalise
        # thousands of characters to find that out.
        wordpiece = self._tokenizer.wordpiece_tokenizer
        if sum(self._char_kind(c) == "letter" for c in word) > wordpiece.max_input_chars_per_word:
            return [wordpiece.unk_token]
        return self._tokenizer.tokenize(word)

    def words(self, text: str) -> List[Tuple[int, int]]:
        """Character spans of the words of BERT's basic tokenizer, in the original text.

        Whitespace ends a word; each punctuation mark and each CJK character is a word of
        its own (judged after lower-casing and accent stripping, as the tokenizer judges
        them). Characters the tokenizer drops (control characters, combining accents)
        stay inside the word around them but never start one.
        """
        spans: List[Tuple[int, int]] = []
        start = None  # of the word being read
        for position, char in enumerate(text):
            kind = self._char_kind(char)
            if kind == "dropped":
                continue
            if kind != "letter" or start is None:
                if start is not None:
                    spans.append((start, self._end_of_word(text, position)))
                    start = None
                if kind == "alone":
                    spans.append((position, position + 1))
                elif kind == "letter":
                    start = position
        if start is not None:
            spans.append((start, self._end_of_word(text, len(text))))
        return spans

    def _judge_char(self, char: str) -> str:
        """"space", "dropped", "alone" (a word of its own) or "letter"."""
        if _is_whitespace(char):
            return "space"
        if _is_dropped(char):
            return "dropped"
        if self._is_cjk(ord(char)):
            return "alone"
        normalised = self._normalise(char)
        if not normalised:
            return "dropped"
        if any(_is_punctuation(c) for c in normalised):
            return "alone"
        return "letter"

    def _normalise(self, char: str) -> str:
        if not self.do_lower_case:
            return char
        decomposed = unicodedata.normalize("NFD", char.lower())
        return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")

    def _end_of_word(self, text: str, position: int) -> int:
        """The end of a word read up to `position`, without dropped characters after it."""
        end = position
        while end > 0 and (_is_whitespace(text[end - 1]) or _is_dropped(text[end - 1])):
            end -= 1
        return end


def _is_dropped(char: str) -> bool:
    """Whether BERT's basic tokenizer removes the character, as its `_clean_text` does."""
    return ord(char) in (0, 0xFFFD) or _is_control(char)


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
