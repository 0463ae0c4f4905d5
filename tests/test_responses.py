"""Retrieval intents' response keys among the labels: intents' confidences and response rankings."""

import numpy as np
import pytest

from rasa_bert_intent.responses import LabelGroups, intent_of, utter_action

LABELS = ["chitchat/ask_name", "chitchat/bot", "faq/price", "greet", "weather"]


def test_labels_group_into_the_intents_rasa_sees():
    groups = LabelGroups(LABELS)
    assert groups.intents == ["chitchat", "faq", "greet", "weather"]
    assert {name: rows.tolist() for name, rows in groups.retrieval_intents.items()} == {
        "chitchat": [0, 1],
        "faq": [2],
    }
    assert intent_of("faq/price") == "faq" and intent_of("greet") == "greet"
    assert utter_action("faq/price") == "utter_faq/price"


def test_an_intents_confidence_is_the_sum_of_its_labels():
    confidences = np.array([[0.5, 0.2, 0.1, 0.1, 0.05], [0.0, 0.0, 0.0, 0.3, 0.6]], np.float32)
    by_intent = LabelGroups(LABELS).intent_confidences(confidences)
    np.testing.assert_allclose(by_intent, [[0.7, 0.1, 0.1, 0.05], [0.0, 0.0, 0.3, 0.6]])
    # Without retrieval intents the labels are the intents: the confidences as they are.
    plain = np.array([[0.25, 0.75]], np.float32)
    assert LabelGroups(["greet", "weather"]).intent_confidences(plain) is plain


def test_a_retrieval_intents_keys_share_its_confidence_times_the_in_scope_factor():
    groups = LabelGroups(LABELS)
    # An in-scope factor of 0.8: the confidences sum to it.
    confidences = np.array([0.1, 0.3, 0.2, 0.1, 0.1], np.float32)
    ranking = groups.response_ranking(confidences, "chitchat")
    assert [key for key, _ in ranking] == ["chitchat/bot", "chitchat/ask_name"]
    np.testing.assert_allclose([value for _, value in ranking], [0.75 * 0.8, 0.25 * 0.8])
    assert groups.response_ranking(confidences, "faq") == [("faq/price", pytest.approx(0.8))]
    # A retrieval intent the network gives nothing still ranks its keys, evenly.
    nothing = np.array([0.0, 0.0, 0.0, 0.5, 0.5], np.float32)
    assert [value for _, value in groups.response_ranking(nothing, "chitchat")] == [0.5, 0.5]
