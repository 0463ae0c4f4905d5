"""BertIntentClassifier through Rasa's own component API, the way Rasa tests its classifiers:
train, process, persist, load, process again; intents, rankings and confidences."""

import copy
import dataclasses

import numpy as np
import onnx
import pytest
from helpers.assistants import (
    EXAMPLES as NLU_EXAMPLES,
    SHOP_EXAMPLES,
    SHOP_IN_SCOPE,
    SHOP_OUT_OF_SCOPE,
    nlu_yaml,
    unbalanced_shop,
)
from helpers.components import (
    EXAMPLES,
    FAST,
    HOSTILE_TEXTS,
    config_of,
    create,
    load_to_finetune,
    parse,
    training_data,
)
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_bert_intent import BertIntentClassifier
from rasa_bert_intent.settings import Settings
from rasa_bert_intent.storage import WEIGHTS_FILE


def test_is_an_intent_classifier_and_entity_extractor_needing_no_other_component():
    assert issubclass(BertIntentClassifier, IntentClassifier)
    assert issubclass(BertIntentClassifier, EntityExtractorMixin)
    assert BertIntentClassifier.required_components() == []


def test_train_process_persist_load_process_again(trained):
    classifier, storage, resource, context = trained
    texts = ["hi there, good morning", "what's the weather like in Rome", "bye, see you"]
    before = parse(classifier, *texts)
    assert [m.get("intent")["name"] for m in before] == ["greet", "weather", "goodbye"]

    loaded = BertIntentClassifier.load(
        {**BertIntentClassifier.get_default_config(), "ranking_length": 0},
        storage,
        resource,
        context,
    )
    after = parse(loaded, *texts)
    for first, second in zip(before, after):
        # The same float32 weights through the same graph: identical, not merely close.
        assert first.get("intent") == second.get("intent")
        assert first.get("intent_ranking") == second.get("intent_ranking")


def test_intent_and_ranking_follow_rasa_rules(trained):
    classifier = trained[0]
    (message,) = parse(classifier, "hello")
    intent, ranking = message.get("intent"), message.get("intent_ranking")
    assert set(intent) == {"name", "confidence"}
    assert type(intent["confidence"]) is float
    assert intent == ranking[0]
    assert [r["name"] for r in ranking] == sorted(
        EXAMPLES, key=lambda n: -next(r["confidence"] for r in ranking if r["name"] == n)
    )
    confidences = [r["confidence"] for r in ranking]
    assert confidences == sorted(confidences, reverse=True)
    # The intent probabilities times the message's in-scope factor (1 for the plain softmax).
    assert 0.5 < sum(confidences) <= 1.0 + 1e-5
    assert all(0.0 <= confidence <= 1.0 for confidence in confidences)
    assert message.as_dict_nlu()["intent"] == intent


def test_out_of_scope_messages_get_low_confidences_unless_turned_off(
    model_storage, execution_context
):
    """A second, small assistant (4 intents, 15 examples each), and messages it never saw."""
    data = TrainingData(
        [Message.build(text=t, intent=i) for i, texts in SHOP_EXAMPLES.items() for t in texts]
    )
    in_scope = [text for texts in SHOP_IN_SCOPE.values() for text in texts]
    expected = [intent for intent, texts in SHOP_IN_SCOPE.items() for _ in texts]
    texts = in_scope + SHOP_OUT_OF_SCOPE
    results = {}
    for detection in (True, False):
        config = {"out_of_scope_detection": detection}
        classifier = create(config, model_storage, Resource(str(detection)), execution_context)
        classifier.train(data)
        results[detection] = parse(classifier, *texts)
    with_detection, plain = results[True], results[False]
    # The same network: with the detection each intent's probability is weighed by the
    # message's nearest training examples in the pretrained space, and all of them by one
    # factor (in_scope.py), so a message's confidences sum to its factor, and an intent the
    # network is sure of stays first; without it, the plain softmax.
    for scaled, softmax in zip(with_detection, plain):
        factor = sum(r["confidence"] for r in scaled.get("intent_ranking"))
        assert 0.0 <= factor <= 1.0 + 1e-5
        assert scaled.get("intent")["name"] == scaled.get("intent_ranking")[0]["name"]
        names = {r["name"] for r in softmax.get("intent_ranking")}
        assert {r["name"] for r in scaled.get("intent_ranking")} == names == set(SHOP_EXAMPLES)
        if softmax.get("intent")["confidence"] > 0.99:
            assert scaled.get("intent")["name"] == softmax.get("intent")["name"], scaled.get("text")
        assert sum(r["confidence"] for r in softmax.get("intent_ranking")) == pytest.approx(1.0)

    def kept(messages):
        """How many messages FallbackClassifier's threshold of 0.5 lets through."""
        return sum(m.get("intent")["confidence"] >= 0.5 for m in messages)

    n = len(in_scope)
    right = [m.get("intent")["name"] == i for m, i in zip(with_detection[:n], expected)]
    # With the defaults seed 42 missed one ("any update on my order", taken for cancel_order),
    # seed 43 none. The factor does not hide the softmax's mistakes: that message is like the
    # training examples, and kept with 0.98.
    assert sum(right) >= 15
    wrong_but_kept = [
        m for ok, m in zip(right, with_detection) if not ok and m.get("intent")["confidence"] >= 0.5
    ]
    assert len(wrong_but_kept) <= 1
    # With the defaults seed 42 kept all 16 and let 2 of the 20 through ("remind me to call my
    # mother", "how do i reset my password", both as cancel_order); the network's distance
    # alone kept 15 and let 1 through. The neighbours' weight (2026-12-03) made a third one
    # surer than the network was: "set an alarm for 7 am", 0.57 for order_pizza without the
    # detection, 0.58 for opening_hours with it; on SNIPS dev data it caught more out-of-scope
    # messages than before (docs/out-of-scope.md, "Neighbours").
    assert kept(with_detection[:n]) >= 12
    assert kept(with_detection[n:]) <= 3
    assert kept(plain[:n]) == 16
    assert kept(plain[n:]) >= 15  # the plain softmax is sure of most out-of-scope messages


def test_rare_intents_beside_a_common_one_are_still_recognised(
    model_storage, resource, execution_context
):
    examples = unbalanced_shop()
    data = TrainingData(
        [Message.build(text=t, intent=i) for i, texts in examples.items() for t in texts]
    )
    classifier = create({}, model_storage, resource, execution_context)
    classifier.train(data)
    rare = [(t, i) for i, texts in SHOP_IN_SCOPE.items() if i != "order_pizza" for t in texts]
    messages = parse(classifier, *[t for t, _ in rare])
    predicted = [m.get("intent")["name"] for m in messages]
    right = sum(p == i for p, (_, i) in zip(predicted, rare))
    assert right >= 0.8 * len(rare), list(zip(predicted, rare))
    # Their messages are in scope too: FallbackClassifier's 0.5 keeps most of them. Before the
    # rare intents had their own in-scope centre and edge it kept none of the 12 (all below
    # 0.001); with them 9, the 3 others short requests unlike the 8 examples of their intent.
    confidences = [m.get("intent")["confidence"] for m in messages]
    assert sum(c >= 0.5 for c in confidences) >= 2 / 3 * len(rare), list(zip(confidences, rare))
    common = parse(classifier, *SHOP_IN_SCOPE["order_pizza"])
    assert [m.get("intent")["name"] for m in common] == ["order_pizza"] * 4


def test_int8_and_fp32_give_the_same_intents(
    trained, model_storage, resource, execution_context
):
    int8 = trained[0]
    fp32 = create(
        {**config_of(int8), "precision": "fp32"}, model_storage, resource, execution_context
    )
    fp32.train(training_data())
    assert (int8.settings.precision, fp32.trained.predictor.precision) == ("int8", "fp32")
    assert len(int8.trained.predictor.onnx_model) < 0.4 * len(fp32.trained.predictor.onnx_model)
    texts = [text for examples in EXAMPLES.values() for text in examples] + [
        "hello, nice to meet you",
        "is it going to be windy in Lisbon",
        "see you next week",
    ]
    for int8_message, fp32_message in zip(parse(int8, *texts), parse(fp32, *texts)):
        assert int8_message.get("intent")["name"] == fp32_message.get("intent")["name"]


def test_ranking_length_cuts_the_ranking_but_not_the_intent(trained):
    classifier = trained[0]
    short = copy.copy(classifier)
    short.settings = dataclasses.replace(classifier.settings, ranking_length=2)
    (message,) = parse(short, "will it rain in Paris")
    assert len(message.get("intent_ranking")) == 2
    assert message.get("intent") == message.get("intent_ranking")[0]


def test_many_messages_in_one_call_match_one_at_a_time(trained):
    classifier = trained[0]
    texts = ["hi", "bye bye", "a much longer message about the weather " * 3, "", "snow?"]
    assert parse(classifier) == []
    together = parse(classifier, *texts)
    for text, message in zip(texts, together):
        (alone,) = parse(classifier, text)
        assert alone.get("intent")["name"] == message.get("intent")["name"]
        assert alone.get("intent")["confidence"] == pytest.approx(
            message.get("intent")["confidence"], abs=1e-5
        )


def test_long_messages_are_truncated_to_max_seq_len(trained):
    classifier = trained[0]
    (message,) = parse(classifier, "weather " * 2000)
    assert message.get("intent")["name"] in EXAMPLES


def test_entity_annotations_train_entities_unless_turned_off(
    trained, model_storage, execution_context
):
    annotated = RasaYAMLReader().reads('version: "3.1"\nnlu:\n' + nlu_yaml(NLU_EXAMPLES))
    assert len(annotated.entity_examples) == 3
    texts = ["hi there, good morning", "what's the weather like in Rome", "bye, see you"]
    confidences = {}
    for name, data, setting in (
        ("plain", None, {}),  # the defaults on the same examples without markup: `trained`
        ("annotated", annotated, {}),
        ("weight 0", annotated, {"entity_loss_weight": 0.0}),
        ("no entities", annotated, {"entity_recognition": False}),
    ):
        if data is None:
            classifier = trained[0]
        else:
            classifier = create(setting, model_storage, Resource(name), execution_context)
            classifier.train(data)
        messages = parse(classifier, *texts)
        assert [m.get("intent")["name"] for m in messages] == ["greet", "weather", "goodbye"]
        confidences[name] = [m.get("intent")["confidence"] for m in messages]
        assert (classifier.trained.predictor.num_entity_tags > 0) == (name == "annotated")
        if name != "annotated":
            assert all(m.get("entities") is None for m in messages)
    # The same seed and examples: only the entity tagging loss can tell these runs apart.
    assert confidences["plain"] == confidences["weight 0"] == confidences["no entities"]
    assert confidences["annotated"] != confidences["plain"]


def test_load_of_a_missing_resource_gives_an_untrained_classifier(
    model_storage, resource, execution_context
):
    classifier = BertIntentClassifier.load(
        BertIntentClassifier.get_default_config(), model_storage, resource, execution_context
    )
    (message,) = parse(classifier, "hello")
    assert message.get("intent") == {"name": None, "confidence": 0.0}
    assert message.get("intent_ranking") == []


def test_examples_too_alike_for_an_edge_leave_the_plain_softmax_and_say_so(
    model_storage, resource, execution_context, caplog
):
    data = TrainingData(
        [Message.build(text="same words", intent=intent) for intent in ("first", "second")]
    )
    classifier = create(FAST, model_storage, resource, execution_context)
    with caplog.at_level("WARNING"):
        classifier.train(data)
    assert any("too few or too alike" in r.getMessage() for r in caplog.records)
    loaded = BertIntentClassifier.load(
        config_of(classifier), model_storage, resource, execution_context
    )
    (message,) = parse(loaded, "other words")
    ranking = message.get("intent_ranking")
    assert sum(r["confidence"] for r in ranking) == pytest.approx(1.0, abs=1e-5)


def test_training_without_examples_persists_nothing(model_storage, resource, execution_context):
    classifier = create(FAST, model_storage, resource, execution_context)
    classifier.train(TrainingData([]))
    loaded = BertIntentClassifier.load(
        config_of(classifier), model_storage, resource, execution_context
    )
    assert loaded.trained is None


# The few-shot candidate's settings (docs/choosing-the-defaults.md, "Few examples"), not the
# defaults: all six layers, the embeddings and bottom two kept as pretrained, a prototype head.
FEW_SHOT = {"num_layers": None, "frozen_layers": 2, "prototype_head": True}


def test_layers_kept_and_a_prototype_head_train_persist_load_and_answer_alike(
    tmp_path, execution_context
):
    (tmp_path / "storage").mkdir()
    storage, resource = LocalModelStorage(tmp_path / "storage"), Resource("few_shot")
    classifier = create({**FEW_SHOT, "ranking_length": 0}, storage, resource, execution_context)
    classifier.train(training_data())
    texts = ["hi there, good morning", "what's the weather like in Rome", "bye, see you"]
    before = parse(classifier, *texts)
    assert [m.get("intent")["name"] for m in before] == ["greet", "weather", "goodbye"]
    loaded = BertIntentClassifier.load(config_of(classifier), storage, resource, execution_context)
    for first, second in zip(before, parse(loaded, *texts)):
        assert first.get("intent_ranking") == second.get("intent_ranking")
    # The kept layers are computed once for both encoders: 2 + 4 + 4 layers, as the
    # defaults' 4 + 6; a fine-tune keeps none of them.
    with storage.read_from(resource) as model_dir:
        onnx_model = onnx.load(str(model_dir / "model.onnx"))
        with np.load(model_dir / WEIGHTS_FILE) as kept:
            names = {name.split(":")[0] for name in kept}  # a kernel's change and its scales
            assert not any(name.startswith(("embeddings/", "encoder/layer_1/")) for name in names)
            assert "encoder/layer_5/output/dense/kernel" in names
    nodes = onnx_model.graph.node
    layers = {node.name.split("/attention")[0] for node in nodes if "/attention/" in node.name}
    assert sorted(layers) == sorted(
        [f"encoder/layer_{i}" for i in range(6)]
        + [f"reference/encoder/layer_{i}" for i in (2, 3, 4, 5)]
    )
    # A fine-tune that would train other layers says so in one line, before any step.
    defaults = copy.copy(classifier)
    defaults.settings = Settings.from_config({})
    finetune = load_to_finetune((defaults, storage, resource, None), tmp_path / "finetune")
    with pytest.raises(RasaException, match="cannot fine-tune the previous model: it trained"):
        finetune.train(training_data())


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=range(len(HOSTILE_TEXTS)))
def test_any_text_gets_a_valid_intent_and_ranking(trained, text):
    (message,) = parse(trained[0], text)
    assert message.get("intent")["name"] in EXAMPLES
    ranking = message.get("intent_ranking")
    assert {r["name"] for r in ranking} == set(EXAMPLES)
    assert all(np.isfinite(r["confidence"]) for r in ranking)


def test_messages_at_and_past_max_seq_len_are_classified(trained):
    classifier = copy.copy(trained[0])
    classifier.settings = dataclasses.replace(classifier.settings, max_seq_len=16)
    exactly = " ".join(["rain"] * 14)  # 14 word pieces, [CLS] and [SEP]: 16
    assert len(classifier.trained.tokenizer.token_ids(exactly, 1000)) == 16
    for text in (exactly, exactly + " rain"):
        (message,) = parse(classifier, text)
        assert message.get("intent")["name"] in EXAMPLES


def test_fewer_layers_make_a_smaller_model_that_still_learns(
    trained, model_storage, resource, execution_context
):
    classifier = create({"num_layers": 2}, model_storage, resource, execution_context)
    classifier.train(training_data())
    texts = ["hi there, good morning", "what's the weather like in Rome", "bye, see you"]
    assert [m.get("intent")["name"] for m in parse(classifier, *texts)] == [
        "greet",
        "weather",
        "goodbye",
    ]
    all_layers, _storage, _resource, _context = trained
    assert len(classifier.trained.predictor.onnx_model) < len(
        all_layers.trained.predictor.onnx_model
    )
