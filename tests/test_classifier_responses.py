"""Retrieval intents through the component: the response keys learnt in the same pass as the
intents, `response_selector` as Rasa's ResponseSelector writes it, persisted, fine-tuned; a
ResponseSelector kept in the pipeline keeps its retrieval intents."""

import logging

import pytest
from helpers.assistants import EXAMPLES as NLU_EXAMPLES
from helpers.assistants import RETRIEVAL_EXAMPLES, RETRIEVAL_RESPONSES, nlu_yaml
from helpers.components import FAST, config_of, create, load_to_finetune, parse
from rasa.engine.graph import ExecutionContext, GraphSchema, SchemaNode
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.selectors.response_selector import ResponseSelector
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

from rasa_bert_intent import BertIntentClassifier

# A key of one example: it trains, and its own text finds it.
ONE_EXAMPLE = {"faq/payment": ["can I pay by card"]}


def faq_data(examples=None, responses=None):
    """EXAMPLES' intents beside chitchat and faq retrieval intents, with their responses."""
    examples = {**NLU_EXAMPLES, **RETRIEVAL_EXAMPLES, **ONE_EXAMPLE, **(examples or {})}
    data = RasaYAMLReader().reads('version: "3.1"\nnlu:\n' + nlu_yaml(examples))
    data.responses = {
        **RETRIEVAL_RESPONSES,
        "utter_faq/payment": [{"text": "Cards and cash."}],
        **(responses or {}),
    }
    return data


def with_selector(**config) -> ExecutionContext:
    """A training graph with a ResponseSelector of `config` beside the component."""
    node = SchemaNode({}, ResponseSelector, "create", "train", config)
    return ExecutionContext(GraphSchema({"train_ResponseSelector": node}), "test-model")


@pytest.fixture(scope="module")
def faq_trained(tmp_path_factory):
    storage = LocalModelStorage(tmp_path_factory.mktemp("faq"))
    context = ExecutionContext(GraphSchema({}), "test-model")
    resource = Resource("faq")
    classifier = create({}, storage, resource, context)  # the defaults
    classifier.train(faq_data())
    return classifier, storage, resource, context


def selected(message, retrieval_intent):
    return message.get("response_selector")[retrieval_intent]["response"]["intent_response_key"]


def test_retrieval_intents_get_their_intent_and_selected_response(faq_trained):
    classifier = faq_trained[0]
    texts = ["what do people call you", "how old are you exactly", "what time do you open",
             "will you deliver to my house", "can I pay by card", "hello there"]
    messages = parse(classifier, *texts)
    assert [m.get("intent")["name"] for m in messages] == [
        "chitchat", "chitchat", "faq", "faq", "faq", "greet"
    ]
    assert [selected(m, "chitchat") for m in messages[:2]] == [
        "chitchat/ask_name", "chitchat/ask_age"
    ]
    assert [selected(m, "faq") for m in messages[2:5]] == [
        "faq/opening_hours", "faq/delivery", "faq/payment"
    ]
    for message in messages:  # every message, as Rasa's ResponseSelector writes them
        response_selector = message.get("response_selector")
        assert response_selector["all_retrieval_intents"] == ["chitchat", "faq"]
        assert {"chitchat", "faq"} <= set(response_selector)
        intents = {r["name"] for r in message.get("intent_ranking")}
        assert intents == {"chitchat", "faq", "greet", "goodbye", "weather"}
    response = messages[0].get("response_selector")["chitchat"]["response"]
    assert response["responses"] == [{"text": "I'm Bert, a bot."}]
    assert response["utter_action"] == "utter_chitchat/ask_name"
    # The response's confidence is its share of the intent's, times the in-scope factor.
    assert 0.5 < response["confidence"] <= 1.0


def test_retrieval_answers_persist_and_load_alike(faq_trained):
    classifier, storage, resource, context = faq_trained
    texts = ["what is your name", "do you deliver", "bye"]
    loaded = BertIntentClassifier.load(config_of(classifier), storage, resource, context)
    for before, after in zip(parse(classifier, *texts), parse(loaded, *texts)):
        assert before.get("intent") == after.get("intent")
        assert before.get("response_selector") == after.get("response_selector")


def test_a_finetune_learns_a_new_response_key(faq_trained, tmp_path):
    hobbies = {"chitchat/ask_hobby": ["what are your hobbies", "what do you do for fun",
                                      "do you have a hobby", "what do you like doing",
                                      "how do you spend your free time", "any hobbies"]}
    responses = {"utter_chitchat/ask_hobby": [{"text": "Reading your messages."}]}
    finetuned = load_to_finetune(faq_trained, tmp_path)
    finetuned.train(faq_data(hobbies, responses))
    (message,) = parse(finetuned, "what hobbies do you have")
    assert message.get("intent")["name"] == "chitchat"
    assert selected(message, "chitchat") == "chitchat/ask_hobby"
    answer = message.get("response_selector")["chitchat"]["response"]["responses"]
    assert answer == [{"text": "Reading your messages."}]


def test_a_response_selector_in_the_pipeline_keeps_the_retrieval_intents_it_answers(
    model_storage, resource
):
    # Plumbing: which labels are learnt, not how well.
    selector = with_selector(retrieval_intent="chitchat")
    chitchat_kept = create(FAST, model_storage, resource, selector)
    chitchat_kept.train(faq_data())
    assert "chitchat" in chitchat_kept.trained.intents
    assert not any(label.startswith("chitchat/") for label in chitchat_kept.trained.intents)
    assert "faq/delivery" in chitchat_kept.trained.intents
    (message,) = parse(chitchat_kept, "what is your name")
    assert set(message.get("response_selector")) == {"all_retrieval_intents", "faq"}
    # A selector of every retrieval intent (no `retrieval_intent`): today's behaviour, intents only.
    all_kept = create(FAST, model_storage, Resource("all_kept"), with_selector())
    all_kept.train(faq_data())
    assert all_kept.trained.intents == ["chitchat", "faq", "goodbye", "greet", "weather"]
    (message,) = parse(all_kept, "what is your name")
    assert message.get("response_selector") is None


def test_a_response_key_without_responses_is_named_and_answers_with_itself(
    model_storage, resource, execution_context, caplog
):
    data = faq_data()
    del data.responses["utter_faq/delivery"]
    classifier = create(FAST, model_storage, resource, execution_context)  # plumbing only
    # The root's level: the component sets its training log's level from Rasa's, which follows it.
    with caplog.at_level(logging.INFO):
        classifier.train(data)
    assert "the domain has no responses for faq/delivery: add `utter_faq/delivery`" in caplog.text
    # The schedule counts the intents Rasa sees, not the 10 labels.
    assert "examples of 5 intents" in caplog.text
    (message,) = parse(classifier, "do you deliver")
    by_key = {
        entry["intent_response_key"]: entry
        for entry in message.get("response_selector")["faq"]["ranking"]
    }
    assert set(by_key) == {"faq/delivery", "faq/opening_hours", "faq/payment"}
    # The key without responses answers with itself (tests/test_rasa_message.py), as Rasa's
    # ResponseSelector does; the others keep theirs.
    assert "faq/delivery" not in classifier.trained.responses
    assert classifier.trained.responses["faq/payment"] == [{"text": "Cards and cash."}]
