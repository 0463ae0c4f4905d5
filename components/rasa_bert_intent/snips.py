"""Converts the SNIPS benchmark (or the article's CSV files) into Rasa NLU training data."""

import csv
import json
import re
from pathlib import Path
from typing import Dict, List, Tuple

from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    INTENT,
    TEXT,
)
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

# The article's CSV files: train.csv and valid.csv are its 13,784 training queries, test.csv its 700.
CSV_TRAIN = ("train.csv", "valid.csv")
CSV_TEST = "test.csv"


_WHITESPACE = re.compile(r"\s+")


class ConversionError(Exception):
    """A benchmark file is missing or unreadable."""


def read_benchmark_json(path: Path) -> List[Message]:
    """The queries of one SNIPS benchmark file, with slots as entities."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConversionError(f"cannot read '{path}': {error.strerror}") from error
    # One file stores an emoji as CESU-8, i.e. two UTF-8-encoded UTF-16 surrogate halves.
    # "surrogatepass" keeps the halves, the UTF-16 round trip joins them into one character.
    text = raw.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass").decode("utf-16")
    try:
        queries_by_intent = json.loads(text)
        return [
            _message(chunks["data"], intent)
            for intent, queries in queries_by_intent.items()
            for chunks in queries
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConversionError(f"'{path}' is not a SNIPS benchmark file: {error!r}") from error


def _message(chunks: List[Dict[str, str]], intent: str) -> Message:
    # Rasa's YAML trims each example, so a query that differs from another only in its
    # leading or trailing whitespace (SNIPS has trailing spaces and newlines) would come
    # back as that other query. Whitespace runs become one space, then the query is trimmed.
    text, spans = "", []
    for chunk in chunks:
        piece = _WHITESPACE.sub(" ", chunk["text"])
        if "entity" in chunk:
            spans.append((len(text), len(text) + len(piece), chunk["entity"]))
        text += piece
    leading = len(text) - len(text.lstrip())
    text = text.strip()
    entities = []
    for start, end, entity in spans:
        start, end = max(start - leading, 0), min(end - leading, len(text))
        if text[start:end].strip():
            entities.append(
                {
                    ENTITY_ATTRIBUTE_START: start,
                    ENTITY_ATTRIBUTE_END: end,
                    ENTITY_ATTRIBUTE_VALUE: text[start:end],
                    ENTITY_ATTRIBUTE_TYPE: entity,
                }
            )
    return Message(data={TEXT: text, INTENT: intent, ENTITIES: entities})


def read_article_csv(path: Path) -> List[Message]:
    """The queries of one of the article's CSV files (columns `text` and `intent`)."""
    try:
        with path.open(encoding="utf-8", newline="") as file:
            rows = list(csv.DictReader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ConversionError(f"cannot read '{path}': {error}") from error
    if rows and not {"text", "intent"} <= set(rows[0]):
        raise ConversionError(f"'{path}' needs the columns 'text' and 'intent'")
    return [_message([{"text": row["text"]}], row["intent"]) for row in rows]


def read_source(folder: Path) -> Tuple[List[Message], List[Message]]:
    """Training and test queries from a SNIPS benchmark folder or the article's CSV folder."""
    if not folder.is_dir():
        raise ConversionError(f"'{folder}' is not a folder")
    if (folder / CSV_TEST).exists():
        train = [
            m
            for name in CSV_TRAIN
            if (folder / name).exists()
            for m in read_article_csv(folder / name)
        ]
        return train, read_article_csv(folder / CSV_TEST)
    train_files = sorted(folder.glob("train_*_full.json"))
    test_files = sorted(folder.glob("validate_*.json"))
    if not train_files or not test_files:
        raise ConversionError(
            f"'{folder}' holds neither the SNIPS benchmark (train_*_full.json, validate_*.json) "
            f"nor the article's CSV files ({', '.join(CSV_TRAIN)}, {CSV_TEST})"
        )
    train = [m for path in train_files for m in read_benchmark_json(path)]
    test = [m for path in test_files for m in read_benchmark_json(path)]
    return train, test


def write_nlu_yaml(messages: List[Message], path: Path) -> None:
    """Writes the messages as Rasa NLU YAML, slots as `[value](entity)` markup."""
    path.parent.mkdir(parents=True, exist_ok=True)
    RasaYAMLWriter().dump(path, TrainingData(training_examples=messages))


def intent_counts(messages: List[Message]) -> Dict[str, int]:
    """How many messages each intent has, by intent name."""
    counts: Dict[str, int] = {}
    for message in messages:
        counts[message.get(INTENT)] = counts.get(message.get(INTENT), 0) + 1
    return dict(sorted(counts.items()))
