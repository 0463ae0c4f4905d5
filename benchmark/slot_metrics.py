"""Span-level slot F1 and sentence accuracy, as the SNIPS papers report them (CoNLL/seqeval),
and the slot errors by kind.

An entity counts as found only when its type and both character offsets are right.
"""

from typing import Dict, Iterable, List, Sequence, Tuple

Span = Tuple[int, int, str]
ERROR_KINDS = ("wrong type", "wrong boundary", "missed", "spurious")


def spans(entities: Iterable[Dict]) -> List[Span]:
    """(start, end, type) of each entity."""
    return sorted((e["start"], e["end"], e["entity"]) for e in entities)


def slot_scores(
    expected: Sequence[List[Span]],
    predicted: Sequence[List[Span]],
    intents_right: Sequence[bool],
) -> Dict[str, float]:
    """Precision, recall and F1 over all spans (in %), the share of sentences (in %) whose
    intent and every span are right, and the count of each kind of error over all sentences."""
    true_positives = sum(len(set(e) & set(p)) for e, p in zip(expected, predicted))
    expected_count = sum(len(e) for e in expected)
    predicted_count = sum(len(p) for p in predicted)
    precision = true_positives / predicted_count if predicted_count else 0.0
    recall = true_positives / expected_count if expected_count else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    sentences_right = sum(
        right and e == p for e, p, right in zip(expected, predicted, intents_right)
    )
    kinds = dict.fromkeys(ERROR_KINDS, 0)
    for e, p in zip(expected, predicted):
        for kind, count in error_kinds(e, p).items():
            kinds[kind] += count
    return {
        "slot_error_kinds": kinds,
        "slot_precision": 100 * precision,
        "slot_recall": 100 * recall,
        "slot_f1": 100 * f1,
        "sentence_accuracy": 100 * sentences_right / len(expected) if expected else 0.0,
    }


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def error_kinds(expected: List[Span], predicted: List[Span]) -> Dict[str, int]:
    """The slot errors of one sentence by kind: an expected span that was not found has the wrong
    type (a predicted span has its offsets), a wrong boundary (a predicted span overlaps it
    otherwise, whatever its type) or was missed; a predicted span that overlaps no expected
    span is spurious."""
    kinds = dict.fromkeys(ERROR_KINDS, 0)
    for span in set(expected) - set(predicted):
        if any(p[:2] == span[:2] for p in predicted):
            kinds["wrong type"] += 1
        elif any(_overlaps(p, span) for p in predicted):
            kinds["wrong boundary"] += 1
        else:
            kinds["missed"] += 1
    kinds["spurious"] = sum(not any(_overlaps(p, e) for e in expected) for p in predicted)
    return kinds
