"""Span-level slot F1 and sentence accuracy, as the SNIPS papers report them (CoNLL/seqeval).

An entity counts as found only when its type and both character offsets are right.
"""

from typing import Dict, Iterable, List, Sequence, Tuple

Span = Tuple[int, int, str]


def spans(entities: Iterable[Dict]) -> List[Span]:
    """(start, end, type) of each entity."""
    return sorted((e["start"], e["end"], e["entity"]) for e in entities)


def slot_scores(
    expected: Sequence[List[Span]],
    predicted: Sequence[List[Span]],
    intents_right: Sequence[bool],
) -> Dict[str, float]:
    """Precision, recall and F1 over all spans (in %), and the share of sentences (in %)
    whose intent and every span are right."""
    true_positives = sum(len(set(e) & set(p)) for e, p in zip(expected, predicted))
    expected_count = sum(len(e) for e in expected)
    predicted_count = sum(len(p) for p in predicted)
    precision = true_positives / predicted_count if predicted_count else 0.0
    recall = true_positives / expected_count if expected_count else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    sentences_right = sum(
        right and e == p for e, p, right in zip(expected, predicted, intents_right)
    )
    return {
        "slot_precision": 100 * precision,
        "slot_recall": 100 * recall,
        "slot_f1": 100 * f1,
        "sentence_accuracy": 100 * sentences_right / len(expected) if expected else 0.0,
    }
