"""What the component writes into a Rasa message: intents, and responses as Rasa's
ResponseSelector writes them, beside what another selector wrote."""

import numpy as np
import pytest
from rasa.shared.nlu.training_data.message import Message

from rasa_bert_intent.rasa_message import set_intent, set_responses
from rasa_bert_intent.responses import LabelGroups

GROUPS = LabelGroups(["chitchat/ask_name", "chitchat/bot", "greet", "weather"])
RESPONSES = {"chitchat/ask_name": [{"text": "I'm Bert."}]}
CONFIDENCES = np.array([0.6, 0.2, 0.1, 0.05], np.float32)  # an in-scope factor of 0.95


def test_the_intent_and_its_ranking_are_the_retrieval_intents_not_their_keys():
    message = Message.build(text="what's your name")
    set_intent(message, GROUPS, CONFIDENCES, ranking_length=2)
    assert message.get("intent") == {"name": "chitchat", "confidence": pytest.approx(0.8)}
    assert [r["name"] for r in message.get("intent_ranking")] == ["chitchat", "greet"]
    assert message.as_dict_nlu()["intent"] == message.get("intent")
    untrained = Message.build(text="hi")
    set_intent(untrained, LabelGroups([]), None, ranking_length=10)
    assert untrained.get("intent") == {"name": None, "confidence": 0.0}
    assert untrained.get("intent_ranking") == []


def test_responses_are_written_as_rasas_response_selector_writes_them():
    message = Message.build(text="what's your name")
    set_responses(message, GROUPS, CONFIDENCES, RESPONSES, ranking_length=10)
    selected = message.get("response_selector")
    assert selected["all_retrieval_intents"] == ["chitchat"]
    response = selected["chitchat"]["response"]
    assert response == {
        "responses": [{"text": "I'm Bert."}],
        "confidence": pytest.approx(0.75 * 0.95),
        "intent_response_key": "chitchat/ask_name",
        "utter_action": "utter_chitchat/ask_name",
    }
    ranking = selected["chitchat"]["ranking"]
    assert [set(entry) for entry in ranking] == [{"confidence", "intent_response_key"}] * 2
    keys = [entry["intent_response_key"] for entry in ranking]
    assert keys == ["chitchat/ask_name", "chitchat/bot"]
    assert message.as_dict_nlu()["response_selector"] == selected


def test_a_key_without_responses_answers_with_itself_and_another_selectors_output_stays():
    message = Message.build(text="are you a bot")
    other = {"default": {"response": {}, "ranking": []}, "all_retrieval_intents": ["faq"]}
    message.set("response_selector", other, add_to_output=True)
    confidences = np.array([0.1, 0.8, 0.05, 0.05], np.float32)
    set_responses(message, GROUPS, confidences, RESPONSES, ranking_length=1)
    selected = message.get("response_selector")
    assert selected["default"] == other["default"]
    assert selected["all_retrieval_intents"] == ["chitchat", "faq"]
    assert selected["chitchat"]["response"]["responses"] == [{"text": "chitchat/bot"}]
    assert len(selected["chitchat"]["ranking"]) == 1
    plain = Message.build(text="hi")
    set_responses(plain, LabelGroups(["greet", "weather"]), np.array([0.5, 0.5]), {}, 10)
    assert plain.get("response_selector") is None
