"""The encoders' tokenizers: BERT's WordPiece (a folder's vocab.txt) and Hugging Face's
`tokenizers` (a folder's tokenizer.json: WordPiece, byte-level BPE, SentencePiece alike). Both
turn raw text into token ids framed by the model's special tokens and keep each word's
character span, which entities are tagged on."""

import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

from tokenizers import Tokenizer

from rasa_bert_intent.quiet import quiet_bert_import

with quiet_bert_import():
    from bert.tokenization.bert_tokenization import (
        BasicTokenizer,
        FullTokenizer,
        WordpieceTokenizer,
        _is_control,
        _is_punctuation,
        _is_whitespace,
    )

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


class _FullTokenizer(FullTokenizer):
    """bert-for-tf2's tokenizer, its vocabulary read by Python: its own reading, a line at a
    time through tf.io.gfile, took 0.12 s of every model's loading."""

    def __init__(self, vocab_file: Path, do_lower_case: bool) -> None:
        # As bert-for-tf2's load_vocab: each line stripped, numbered in order.
        with open(vocab_file, encoding="utf-8") as lines:
            self.vocab = {line.strip(): index for index, line in enumerate(lines)}
        self.inv_vocab = {index: token for token, index in self.vocab.items()}
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
        self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)


class WordPieceTokenizer:
    """Turns texts into `[CLS] … [SEP]` token ids of a BERT vocabulary, keeping word offsets."""

    def __init__(self, vocab_file: Union[str, Path], do_lower_case: bool) -> None:
        """Loads the vocabulary."""
        self.vocab_file = Path(vocab_file)
        self._tokenizer = _FullTokenizer(self.vocab_file, do_lower_case)
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


# The tokenizer's files in an encoder's folder and in a trained model's.
VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
# Padding tokens of the common vocabularies, for a tokenizer.json that sets no padding.
_PAD_TOKENS = ("[PAD]", "<pad>")
# Rust strings cannot hold a lone surrogate; each becomes one replacement character, so that
# character offsets stay those of the text.
_SURROGATE = re.compile("[\ud800-\udfff]")


class HuggingFaceTokenizer:
    """Turns texts into token ids with a tokenizer.json, keeping each word's character span.

    The network pads with 0, so the tokenizer's padding id and 0 trade places in the ids it
    gives, as they do in the word table (architectures.EncoderWeights)."""

    def __init__(self, tokenizer_file: Union[str, Path]) -> None:
        """Reads the tokenizer; its own truncation and padding are turned off."""
        self.tokenizer_file = Path(tokenizer_file)
        try:
            self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as error:  # the library raises plain Exceptions for bad files
            raise ValueError(f"cannot read '{tokenizer_file}': {error}") from error
        padding = self._tokenizer.padding
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.pad_id = padding["pad_id"] if padding else _pad_id(self._tokenizer)
        normalizer = self._tokenizer.normalizer  # its JSON, read back rather than the file again
        self.do_lower_case = normalizer is not None and _lower_cases(
            json.loads(normalizer.__getstate__())
        )
        self._special_count = self._tokenizer.num_special_tokens_to_add(False)
        framed = self._tokenizer.post_process(self._tokenizer.encode("a", add_special_tokens=False))
        mask = framed.special_tokens_mask
        self._leading = mask.index(0) if 0 in mask else 0  # special tokens before the text's

    def token_ids(self, text: Optional[str], max_seq_len: int) -> List[int]:
        """Token ids of one text, truncated to `max_seq_len` including the special tokens."""
        return self.encode(text, max_seq_len).token_ids

    def encode(self, text: Optional[str], max_seq_len: int) -> Encoding:
        """The token ids of `text`, its words, and each kept word's first piece."""
        text = _SURROGATE.sub("\ufffd", text or "")
        pieces = self._tokenizer.encode(text, add_special_tokens=False)
        room = max_seq_len - self._special_count
        spans: List[List[int]] = []  # word id, start, end, first piece, last piece
        for index, (word, (start, end)) in enumerate(zip(pieces.word_ids, pieces.offsets)):
            if word is None:
                continue
            if spans and spans[-1][0] == word:
                spans[-1][2], spans[-1][4] = end, index
            else:
                spans.append([word, start, end, index, index])
        # A piece of whitespace alone (SentencePiece's "▁" before a second space) is no word.
        words, kept = [], []
        for (start, end), (_, _, _, first, last) in zip(_words(text, spans), spans):
            if start < end:
                words.append((start, end))
                if last < room and len(kept) == len(words) - 1:
                    kept.append(self._leading + first)
        pieces.truncate(room)
        framed = self._tokenizer.post_process(pieces)
        token_ids = [self._network_id(i) for i in framed.ids]
        return Encoding(token_ids, words, kept)

    def words(self, text: Optional[str]) -> List[Tuple[int, int]]:
        """Character spans of the words of the tokenizer's pre-tokenizer, in the text."""
        return self.encode(text, self._special_count).words

    def _network_id(self, token_id: int) -> int:
        if token_id == self.pad_id:
            return 0
        return self.pad_id if token_id == 0 else token_id


# Either tokenizer: both give `Encoding`s through `encode` and `token_ids`.
TextTokenizer = Union[WordPieceTokenizer, HuggingFaceTokenizer]


def _pad_id(tokenizer: Tokenizer) -> int:
    for token in _PAD_TOKENS:
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id
    return 0


def _lower_cases(spec: Any) -> bool:
    """Whether a tokenizer.json's normalizer lower-cases the text."""
    if isinstance(spec, dict):
        if spec.get("type") == "Lowercase" or (
            spec.get("type") == "BertNormalizer" and spec.get("lowercase")
        ):
            return True
        return any(_lower_cases(spec.get(key)) for key in ("normalizer", "normalizers"))
    if isinstance(spec, list):
        return any(_lower_cases(item) for item in spec)
    return False


def _words(text: str, spans: List[List[int]]) -> List[Tuple[int, int]]:
    """The words' spans in the text: without the whitespace that byte-level and SentencePiece
    pieces carry, and over the characters normalising dropped after a word's last piece (a
    combining accent, a control character), as far as the next word or whitespace."""
    words = []
    for index, (_, start, end, _, _) in enumerate(spans):
        while start < end and text[start].isspace():
            start += 1
        limit = spans[index + 1][1] if index + 1 < len(spans) else len(text)
        while end < limit and not text[end].isspace():
            end += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        words.append((start, end))
    return words
