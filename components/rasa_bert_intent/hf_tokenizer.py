"""Tokenization by a folder's `tokenizer.json`, with Hugging Face's `tokenizers` (WordPiece,
byte-level BPE, SentencePiece alike): token ids framed by the model's special tokens, and the
words of its pre-tokenizer, which entities are tagged on."""

import json
import re
from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

from tokenizers import Tokenizer

from rasa_bert_intent.tokenization import Encoding, WordPieceTokenizer

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
