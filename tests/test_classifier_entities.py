"""Entities through the component: Rasa's fields, roles and groups, whole words, tokens, and
entities without intents."""

import numpy as np
import pytest
from helpers.assistants import TRIPS_NLU
from helpers.components import FAST, HOSTILE_TEXTS, create, entities_of, parse
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader
from rasa.shared.nlu.training_data.message import Message

from rasa_bert_intent import BertIntentClassifier


def test_entities_carry_rasas_fields_roles_and_groups(trips):
    classifier = trips[0]
    text = "fly from Berlin to Oslo"
    (message,) = parse(classifier, text)
    assert message.get("intent")["name"] == "book_trip"
    assert entities_of(message) == [
        ("city", "Berlin", "departure", None),
        ("city", "Oslo", "destination", None),
    ]
    for entity in message.get("entities"):
        assert set(entity) == {
            "entity", "start", "end", "value", "confidence_entity", "extractor", "role"
        }
        assert entity["value"] == text[entity["start"] : entity["end"]]
        assert entity["extractor"] == "BertIntentClassifier"
        assert type(entity["confidence_entity"]) is float and 0 < entity["confidence_entity"] <= 1
    (food,) = parse(classifier, "a large pizza and a small salad")
    assert entities_of(food) == [
        ("size", "large", None, "1"),
        ("food", "pizza", None, "1"),
        ("size", "small", None, "2"),
        ("food", "salad", None, "2"),
    ]


def test_adjacent_entities_of_one_type_stay_apart(trips):
    (message,) = parse(trips[0], "order pizza pasta salad")
    assert entities_of(message) == [
        ("food", "pizza", None, None),
        ("food", "pasta", None, None),
        ("food", "salad", None, None),
    ]


def test_entities_are_whole_words_and_tokens_are_set_when_no_tokenizer_ran(trips):
    classifier = trips[0]
    text = "fly  from Berlin-Tegel\tto Oslo!! 🍕 Zürich"
    (message,) = parse(classifier, text)
    words = classifier.trained.tokenizer.words(text)
    tokens = message.get(TOKENS_NAMES["text"])
    assert [(t.text, t.start, t.end) for t in tokens] == [(text[s:e], s, e) for s, e in words]
    starts, ends = {s for s, _ in words}, {e for _, e in words}
    for entity in message.get("entities") or []:
        assert entity["start"] in starts and entity["end"] in ends


def test_tokens_of_a_tokenizer_before_it_are_kept(trips):
    message = Message.build(text="fly from New York to Oslo")
    WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process([message])
    tokens = message.get(TOKENS_NAMES["text"])
    trips[0].process([message])
    assert message.get(TOKENS_NAMES["text"]) is tokens
    assert ("city", "New York", "departure", None) in entities_of(message)


def test_persisted_and_loaded_entities_are_identical(trips):
    classifier, storage, context = trips
    texts = ["fly from Paris to Rome", "a small soup and a large burger", "hi", ""]
    loaded = BertIntentClassifier.load(
        BertIntentClassifier.get_default_config(), storage, Resource("trips"), context
    )
    assert loaded.trained.entity_labels == classifier.trained.entity_labels
    for before, after in zip(parse(classifier, *texts), parse(loaded, *texts)):
        assert before.get("entities") == after.get("entities")
        assert before.get("intent") == after.get("intent")


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=range(len(HOSTILE_TEXTS)))
def test_any_text_gets_entities_inside_the_text(trips, text):
    (message,) = parse(trips[0], text)
    assert message.get("intent")["name"] in {"book_trip", "order_food", "greet"}
    for entity in message.get("entities") or []:
        assert 0 <= entity["start"] < entity["end"] <= len(text)
        assert entity["value"] == text[entity["start"] : entity["end"]]
    for token in message.get(TOKENS_NAMES["text"]):
        assert 0 <= token.start < token.end <= len(text)


def test_entities_only_with_a_crf_leave_the_intent_to_another_classifier(
    model_storage, execution_context
):
    config = {"intent_classification": False, "entity_crf": True}
    resource = Resource("entities_only")
    classifier = create(config, model_storage, resource, execution_context)
    classifier.train(RasaYAMLReader().reads(TRIPS_NLU))
    texts = ["fly from Berlin to Oslo", "order pizza pasta salad", "a large soup"]
    before = parse(classifier, *texts)
    assert before[0].get("intent") is None and before[0].get("intent_ranking") is None
    assert entities_of(before[0]) == [
        ("city", "Berlin", "departure", None),
        ("city", "Oslo", "destination", None),
    ]
    assert [e[1] for e in entities_of(before[1])] == ["pizza", "pasta", "salad"]
    loaded = BertIntentClassifier.load(config, model_storage, resource, execution_context)
    # O, and B and I of 7 labels: two roles of city, three groupings of food, two of size.
    assert loaded.trained.entity_transitions.shape == (15, 15)
    np.testing.assert_array_equal(
        loaded.trained.entity_transitions, classifier.trained.entity_transitions
    )
    for first, second in zip(before, parse(loaded, *texts)):
        assert first.get("entities") == second.get("entities")


def test_annotations_off_word_boundaries_are_counted_once_and_their_intents_trained(
    model_storage, resource, execution_context, caplog
):
    data = RasaYAMLReader().reads(
        TRIPS_NLU
        + "- intent: order_food\n  examples: |\n"
        + "    - [pizz](food)as for all\n    - two [soup](food)s\n"
    )
    classifier = create(FAST, model_storage, resource, execution_context)
    with caplog.at_level("WARNING"):
        classifier.train(data)
    warnings = [r.getMessage() for r in caplog.records if "word boundaries" in r.getMessage()]
    assert len(warnings) == 1
    assert "BertIntentClassifier: 2 of 24 training examples" in warnings[0]
