"""Entities as BIO tags over words: the training examples' annotations put on their word
pieces, and tags predicted for words decoded back into Rasa entities.

A label is an entity type with its role and group, if any: one combined label per word. Tag 0
is outside any entity; label k has the tags 2k + 1 (B, the entity's first word) and 2k + 2
(I, each word after it), so two adjacent entities of one type stay apart.
"""

import re
from functools import lru_cache
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from rasa.shared.nlu.constants import (
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_GROUP,
    ENTITY_ATTRIBUTE_ROLE,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
)
from rasa.nlu.constants import ENTITY_ATTRIBUTE_CONFIDENCE_TYPE

from rasa_bert_intent.pretrained.tokenization import Encoding

OUTSIDE = 0
UNTAGGED = -1  # the tag of a position the tagging loss ignores: all but each word's first piece
# (entity type, role, group); role and group are None where the training data has none.
Label = Tuple[str, Optional[str], Optional[str]]
# A whitespace-separated token, and a possessive ending that may stay outside an entity.
_TOKEN = re.compile(r"\S+")
_POSSESSIVE = re.compile(r"['\u2019][sS]$")


def label_of(entity: Dict[str, Any]) -> Optional[Label]:
    """The label of a Rasa entity; None if it has no type or no character span."""
    if not (
        isinstance(entity.get(ENTITY_ATTRIBUTE_TYPE), str)
        and isinstance(entity.get(ENTITY_ATTRIBUTE_START), int)
        and isinstance(entity.get(ENTITY_ATTRIBUTE_END), int)
    ):
        return None
    return (
        entity[ENTITY_ATTRIBUTE_TYPE],
        entity.get(ENTITY_ATTRIBUTE_ROLE),
        entity.get(ENTITY_ATTRIBUTE_GROUP),
    )


def num_tags(labels: Sequence[Label]) -> int:
    """Outside, and B and I for each label; 0 without labels (no tagging head)."""
    return 1 + 2 * len(labels) if labels else 0


def begin_and_inside_tags(label: int) -> Tuple[int, int]:
    """The B and I tags of the label at index `label`."""
    return 2 * label + 1, 2 * label + 2


def word_tags(
    words: Sequence[Tuple[int, int]],
    entities: Sequence[Dict[str, Any]],
    labels: Sequence[Label],
) -> Optional[List[int]]:
    """One BIO tag per word; None if an entity does not start and end on word boundaries,
    overlaps another, or covers no word."""
    index_of = {label: index for index, label in enumerate(labels)}
    starts = {start: word for word, (start, _end) in enumerate(words)}
    ends = {end: word for word, (_start, end) in enumerate(words)}
    tags = [OUTSIDE] * len(words)
    for entity in entities:
        first = starts.get(entity[ENTITY_ATTRIBUTE_START])
        last = ends.get(entity[ENTITY_ATTRIBUTE_END])
        if first is None or last is None or last < first:
            return None
        if any(tag != OUTSIDE for tag in tags[first : last + 1]):
            return None
        begin, inside = begin_and_inside_tags(index_of[label_of(entity)])
        tags[first] = begin
        tags[first + 1 : last + 1] = [inside] * (last - first)
    return tags


def joined_words(text: str, words: Sequence[Tuple[int, int]]) -> List[bool]:
    """For each word, whether punctuation inside one whitespace-separated token joins it to
    the word before ("Show-Biz", "A.j.", "O'Neill", "AC/DC", "3.5"): an entity takes both
    or neither. Punctuation at a token's edge ("Paris,", "(Boston)") and a possessive "'s"
    ("Beyoncé's") are not joined."""
    # Each token's core: from its first to its last letter or digit, less a possessive.
    core_of = {}
    for token in _TOKEN.finditer(text):
        alphanumeric = [i for i, char in enumerate(token.group()) if char.isalnum()]
        if not alphanumeric:
            continue
        start, end = token.start() + alphanumeric[0], token.start() + alphanumeric[-1] + 1
        possessive = _POSSESSIVE.search(text, start, end)
        if possessive and possessive.start() > start:
            end = possessive.start()
        core_of.update({position: (start, end) for position in range(start, end)})

    def is_punctuation(word: Tuple[int, int]) -> bool:
        return not any(char.isalnum() for char in text[word[0] : word[1]])

    joined = [False] * len(words)
    for index in range(1, len(words)):
        previous, word = words[index - 1], words[index]
        core = core_of.get(previous[0])
        joined[index] = (
            core is not None
            and core == core_of.get(word[1] - 1)
            and (is_punctuation(previous) or is_punctuation(word))
        )
    return joined


def best_tags(
    tag_probabilities: np.ndarray,
    transitions: Optional[np.ndarray] = None,
    joined: Optional[Sequence[bool]] = None,
) -> np.ndarray:
    """The best valid BIO tag sequence of `[words, tags]` probabilities (Viterbi).

    Valid: an I tag only follows the B or I of its own label; taking each word's most
    likely tag alone broke an entity in two on 5% of the SNIPS dev queries. A word that is
    `joined` to the one before (`joined_words`) takes its entity, or none as it does. A path
    scores the sum of its log probabilities and of its CRF `transitions[previous, tag]`, if
    any: the log probabilities differ from the CRF's logits by one constant per word, which
    leaves the best path unchanged.
    """
    num_words, num_tags_ = tag_probabilities.shape
    if num_words == 0:
        return np.zeros(0, dtype=int)
    scores = np.log(np.maximum(tag_probabilities.astype(np.float64), 1e-12))
    is_inside, allowed, continues = _valid_bio(num_tags_)
    learned = 0.0 if transitions is None else transitions
    transition = np.where(allowed, learned, -np.inf)
    joined_transition = np.where(continues, learned, -np.inf)
    best = np.where(is_inside, -np.inf, scores[0])
    backpointers = np.zeros((num_words, num_tags_), dtype=int)
    for word in range(1, num_words):
        is_joined = joined is not None and joined[word]
        candidates = best[:, None] + (joined_transition if is_joined else transition)
        backpointers[word] = np.argmax(candidates, axis=0)
        best = candidates[backpointers[word], np.arange(num_tags_)] + scores[word]
    tags = np.zeros(num_words, dtype=int)
    tags[-1] = int(np.argmax(best))
    for word in range(num_words - 1, 0, -1):
        tags[word - 1] = backpointers[word, tags[word]]
    return tags


@lru_cache(maxsize=8)
def _valid_bio(num_tags_: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which tags are I tags, `allowed[previous, tag]`: O and B follow anything, an I
    follows its label's B or I, and `continues[previous, tag]`, what may cross a joined
    boundary: O after O, an I after its label's B or I. Cached: it is the same for every
    message of a model."""
    is_inside = (np.arange(num_tags_) % 2 == 0) & (np.arange(num_tags_) > 0)
    allowed = np.ones((num_tags_, num_tags_), dtype=bool)
    allowed[:, is_inside] = False
    for inside in np.flatnonzero(is_inside):
        allowed[[inside - 1, inside], inside] = True
    continues = np.zeros_like(allowed)
    continues[OUTSIDE, OUTSIDE] = True
    continues[:, is_inside] = allowed[:, is_inside]
    for array in (is_inside, allowed, continues):
        array.flags.writeable = False
    return is_inside, allowed, continues


def decode(
    text: str,
    words: Sequence[Tuple[int, int]],
    tag_probabilities: np.ndarray,
    labels: Sequence[Label],
    transitions: Optional[np.ndarray] = None,
    word_rule: bool = True,
) -> List[Dict[str, Any]]:
    """Rasa entities of whole words from `[words, tags]` probabilities (`best_tags`), which
    never cut a token at inner punctuation (`joined_words`) unless `word_rule` is false.

    An entity's confidence is that of its least certain word, as Rasa's extractors report it.
    """
    entities: List[Dict[str, Any]] = []
    joined = joined_words(text, words) if word_rule else None
    tags = best_tags(np.asarray(tag_probabilities)[: len(words)], transitions, joined)
    for (start, end), probabilities, tag in zip(words, tag_probabilities, tags):
        if tag == OUTSIDE:
            continue
        confidence = float(probabilities[tag])
        if tag % 2 == 0:  # I: best_tags puts it only after its label's B or I
            entity = entities[-1]
            entity[ENTITY_ATTRIBUTE_END] = end
            entity[ENTITY_ATTRIBUTE_CONFIDENCE_TYPE] = min(
                entity[ENTITY_ATTRIBUTE_CONFIDENCE_TYPE], confidence
            )
            continue
        entity_type, role, group = labels[(tag - 1) // 2]
        entity = {
            ENTITY_ATTRIBUTE_TYPE: entity_type,
            ENTITY_ATTRIBUTE_START: start,
            ENTITY_ATTRIBUTE_END: end,
            ENTITY_ATTRIBUTE_CONFIDENCE_TYPE: confidence,
        }
        if role is not None:
            entity[ENTITY_ATTRIBUTE_ROLE] = role
        if group is not None:
            entity[ENTITY_ATTRIBUTE_GROUP] = group
        entities.append(entity)
    for entity in entities:
        entity[ENTITY_ATTRIBUTE_VALUE] = text[
            entity[ENTITY_ATTRIBUTE_START] : entity[ENTITY_ATTRIBUTE_END]
        ]
    return entities


def piece_tags(first_pieces: Sequence[int], tags: Sequence[int], length: int) -> List[int]:
    """Word tags placed on each word's first piece of `length` token ids; UNTAGGED elsewhere."""
    placed = [UNTAGGED] * length
    for piece, tag in zip(first_pieces, tags):
        placed[piece] = tag
    return placed


def labels_in(entity_lists: Sequence[Sequence[Dict[str, Any]]]) -> List[Label]:
    """The labels that lists of Rasa entities annotate, in a fixed order."""
    labels = {
        label
        for entities in entity_lists
        for label in map(label_of, entities)
        if label is not None
    }
    return sorted(labels, key=lambda label: tuple(part or "" for part in label))


def training_tags(
    entity_lists: Sequence[Sequence[Dict[str, Any]]],
    encodings: Sequence[Encoding],
    labels: List[Label],
) -> Tuple[List[Optional[List[int]]], List[int]]:
    """Each example's tags on its token ids (None leaves its entities untrained, as for every
    example without `labels`), and the examples whose annotations do not fit its words."""
    if not labels:
        return [None] * len(encodings), []
    tag_lists: List[Optional[List[int]]] = []
    misaligned = []
    for index, (entities, encoding) in enumerate(zip(entity_lists, encodings)):
        tags = word_tags(encoding.words, [e for e in entities if label_of(e) is not None], labels)
        if tags is None:
            misaligned.append(index)
            tag_lists.append(None)
        else:
            tag_lists.append(piece_tags(encoding.first_pieces, tags, len(encoding.token_ids)))
    return tag_lists, misaligned
