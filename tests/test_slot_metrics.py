"""The benchmark's span-level slot scores and its kinds of slot error."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmark"))

from slot_metrics import error_kinds, slot_scores  # noqa: E402

ARTIST = (5, 14, "artist")
SERVICE = (18, 25, "service")


def test_each_unfound_span_and_each_stray_prediction_is_one_kind_of_error():
    assert error_kinds([ARTIST, SERVICE], [ARTIST, SERVICE]) == {
        "wrong type": 0, "wrong boundary": 0, "missed": 0, "spurious": 0
    }
    assert error_kinds([ARTIST], [(5, 14, "track")])["wrong type"] == 1
    # A span cut short counts as a wrong boundary, whatever type it was given.
    assert error_kinds([ARTIST, SERVICE], [(7, 14, "artist"), (18, 21, "track")]) == {
        "wrong type": 0, "wrong boundary": 2, "missed": 0, "spurious": 0
    }
    assert error_kinds([ARTIST, SERVICE], [ARTIST, (0, 4, "year")]) == {
        "wrong type": 0, "wrong boundary": 0, "missed": 1, "spurious": 1
    }
    # Touching is not overlapping: a prediction that ends where the expected span starts.
    assert error_kinds([ARTIST], [(0, 5, "year")]) == {
        "wrong type": 0, "wrong boundary": 0, "missed": 1, "spurious": 1
    }


def test_slot_scores_count_the_kinds_over_all_sentences():
    expected = [[ARTIST], [SERVICE], []]
    predicted = [[(5, 14, "track")], [SERVICE], [(0, 3, "year")]]
    scores = slot_scores(expected, predicted, [True, True, False])
    assert scores["slot_error_kinds"] == {
        "wrong type": 1, "wrong boundary": 0, "missed": 0, "spurious": 1
    }
    assert scores["slot_precision"] == pytest.approx(100 / 3)
    assert scores["slot_recall"] == pytest.approx(50.0)
    assert scores["sentence_accuracy"] == pytest.approx(100 / 3)
