"""BertIntentClassifier through Rasa's own component API, the way Rasa tests its classifiers."""

import copy
import json
import re
import shutil

import numpy as np
import onnx
import pytest
from small_assistant import (
    EXAMPLES as NLU_EXAMPLES,
    SHOP_EXAMPLES,
    SHOP_IN_SCOPE,
    SHOP_OUT_OF_SCOPE,
    TRIPS_NLU,
    nlu_yaml,
    unbalanced_shop,
)
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.exceptions import InvalidConfigException, RasaException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_bert_intent import BertIntentClassifier
from rasa_bert_intent.storage import (
    IN_SCOPE_FILE,
    METADATA_FILE,
    MODEL_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
)

MARKUP = re.compile(r"\[([^\]]+)\]\([^)]+\)")
# Plain texts: entity markup is for the NLU YAML tests.
EXAMPLES = {intent: [MARKUP.sub(r"\1", t) for t in texts] for intent, texts in NLU_EXAMPLES.items()}
# Only for tests of plumbing that judge no quality (warnings, refusals, files): one short pass.
# Every test that checks what the model predicts trains with the shipped defaults.
FAST = {"epochs": 1}


def training_data() -> TrainingData:
    return TrainingData(
        [
            Message.build(text=text, intent=intent)
            for intent, texts in EXAMPLES.items()
            for text in texts
        ]
    )


def create(config, model_storage, resource, execution_context) -> BertIntentClassifier:
    return BertIntentClassifier.create(
        {**BertIntentClassifier.get_default_config(), **config},
        model_storage,
        resource,
        execution_context,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One classifier trained once for the tests that only read it."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource

    storage = LocalModelStorage(tmp_path_factory.mktemp("storage"))
    context = ExecutionContext(GraphSchema({}), "test-model")
    resource = Resource("trained_classifier")
    # The defaults, but for the whole ranking that some tests read.
    classifier = create({"ranking_length": 0}, storage, resource, context)
    classifier.train(training_data())
    return classifier, storage, resource, context


def parse(classifier, *texts):
    return classifier.process([Message.build(text=text) for text in texts])


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
    fp32 = create({**int8.config, "precision": "fp32"}, model_storage, resource, execution_context)
    fp32.train(training_data())
    assert (int8.config["precision"], fp32.trained.predictor.precision) == ("int8", "fp32")
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
    short.config = {**classifier.config, "ranking_length": 2}
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
        classifier.config, model_storage, resource, execution_context
    )
    (message,) = parse(loaded, "other words")
    ranking = message.get("intent_ranking")
    assert sum(r["confidence"] for r in ranking) == pytest.approx(1.0, abs=1e-5)


def test_training_without_examples_persists_nothing(model_storage, resource, execution_context):
    classifier = create(FAST, model_storage, resource, execution_context)
    classifier.train(TrainingData([]))
    loaded = BertIntentClassifier.load(
        classifier.config, model_storage, resource, execution_context
    )
    assert loaded.trained is None


def _bump_format_version(path):
    metadata = json.loads(path.read_text())
    path.write_text(json.dumps({**metadata, "format_version": metadata["format_version"] + 1}))


def _flip_a_byte(path):
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


@pytest.mark.parametrize(
    "file_name, damage",
    [
        (
            MODEL_FILE,
            lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
        ),
        (MODEL_FILE, _flip_a_byte),
        (MODEL_FILE, lambda path: path.unlink()),
        (VOCAB_FILE, lambda path: path.unlink()),
        (METADATA_FILE, lambda path: path.write_text("{not json")),
        (METADATA_FILE, _bump_format_version),
        (IN_SCOPE_FILE, _flip_a_byte),
        (IN_SCOPE_FILE, lambda path: path.unlink()),
    ],
    ids=[
        "truncated model",
        "altered model",
        "no model",
        "no vocabulary",
        "broken metadata",
        "newer format",
        "altered out-of-scope statistics",
        "no out-of-scope statistics",
    ],
)
def test_damaged_model_files_give_an_error_naming_component_and_file(trained, file_name, damage):
    classifier, storage, resource, context = trained
    with storage.read_from(resource) as model_dir:
        path = model_dir / file_name
        original = path.read_bytes()
        damage(path)
        try:
            with pytest.raises(RasaException, match=f"BertIntentClassifier.*'{file_name}'"):
                BertIntentClassifier.load(classifier.config, storage, resource, context)
        finally:
            path.write_bytes(original)


def test_a_model_of_the_previous_format_still_loads(trained):
    # Format 7 had no "tokenizer" in its metadata: vocab.txt, always.
    classifier, storage, resource, context = trained
    texts = ["hi there, good morning", "what's the weather like in Rome"]
    with storage.read_from(resource) as model_dir:
        metadata = (model_dir / METADATA_FILE).read_text()
        old = {**json.loads(metadata), "format_version": 7}
        del old["tokenizer"]
        (model_dir / METADATA_FILE).write_text(json.dumps(old))
        try:
            loaded = BertIntentClassifier.load(classifier.config, storage, resource, context)
        finally:
            (model_dir / METADATA_FILE).write_text(metadata)
    for before, after in zip(parse(classifier, *texts), parse(loaded, *texts)):
        assert after.get("intent_ranking") == pytest.approx(before.get("intent_ranking"))


def load_to_finetune(trained, tmp_path):
    """The trained classifier loaded as `rasa train --finetune` loads it, from a copy of its
    storage (the fine-tune writes where it read)."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    classifier, storage, resource, _ = trained
    with storage.read_from(resource) as model_dir:
        shutil.copytree(model_dir, tmp_path / resource.name)
    copy_storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test-model", is_finetuning=True)
    return BertIntentClassifier.load(classifier.config, copy_storage, resource, context)


def test_a_finetune_learns_a_new_intent_and_keeps_the_old_ones(trained, tmp_path, caplog):
    thanks = ["thank you", "thanks a lot", "many thanks", "thanks, that helps", "cheers, thanks",
              "thank you very much"]
    data = training_data().merge(
        TrainingData([Message.build(text=text, intent="thank") for text in thanks])
    )
    finetuned = load_to_finetune(trained, tmp_path)
    with caplog.at_level("INFO"):
        finetuned.train(data)
    assert (
        "fine-tuning from the previous model: 40 of its 40 passes, 24 examples, 6 new, "
        "new intents: thank; batch 8, about 120 steps" in caplog.text
    )
    texts = ["thanks so much", "hello, good morning", "is it going to rain", "bye for now"]
    assert [m.get("intent")["name"] for m in parse(finetuned, *texts)] == [
        "thank", "greet", "weather", "goodbye"
    ]


def test_a_finetune_of_a_model_without_trained_weights_says_to_train_it_once(trained, tmp_path):
    classifier, _, resource, _ = trained
    load_to_finetune(trained, tmp_path)  # the copy loads
    (tmp_path / resource.name / WEIGHTS_FILE).unlink()
    with pytest.raises(RasaException, match="BertIntentClassifier.*once without --finetune"):
        load_to_finetune((classifier, LocalModelStorage(tmp_path), resource, None), tmp_path / "again")


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
    loaded = BertIntentClassifier.load(classifier.config, storage, resource, execution_context)
    for first, second in zip(before, parse(loaded, *texts)):
        assert first.get("intent_ranking") == second.get("intent_ranking")
    # The kept layers are computed once for both encoders: 2 + 4 + 4 layers, as the
    # defaults' 4 + 6; a fine-tune keeps none of them.
    with storage.read_from(resource) as model_dir:
        onnx_model = onnx.load(str(model_dir / "model.onnx"))
        with np.load(model_dir / WEIGHTS_FILE) as kept:
            assert not any(name.startswith(("embeddings/", "encoder/layer_1/")) for name in kept)
            assert "encoder/layer_5/output/dense/kernel" in kept
    nodes = onnx_model.graph.node
    layers = {node.name.split("/attention")[0] for node in nodes if "/attention/" in node.name}
    assert sorted(layers) == sorted(
        [f"encoder/layer_{i}" for i in range(6)]
        + [f"reference/encoder/layer_{i}" for i in (2, 3, 4, 5)]
    )
    # A fine-tune that would train other layers says so in one line, before any step.
    defaults = copy.copy(classifier)
    defaults.config = BertIntentClassifier.get_default_config()
    finetune = load_to_finetune((defaults, storage, resource, None), tmp_path / "finetune")
    with pytest.raises(RasaException, match="cannot fine-tune the previous model: it trained"):
        finetune.train(training_data())


def test_rasa_keeps_refusing_new_labels_where_another_component_learns_them():
    from rasa.engine.graph import GraphSchema, SchemaNode
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
        CountVectorsFeaturizer,
    )
    from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer

    from rasa_bert_intent.rasa_checks import only_growing_learners

    def schema(*classes):
        return GraphSchema({
            f"train_{index}": SchemaNode({}, uses, "create", "train", {})
            for index, uses in enumerate(classes)
        })

    assert only_growing_learners(
        schema(WhitespaceTokenizer, CountVectorsFeaturizer, BertIntentClassifier),
        BertIntentClassifier,
    )
    assert not only_growing_learners(
        schema(CountVectorsFeaturizer, BertIntentClassifier, DIETClassifier), BertIntentClassifier
    )


# Tests of the settings themselves: each bad value is refused before anything trains.
@pytest.mark.parametrize(
    "setting, value",
    [
        ("epochs", -1),
        ("epochs", "3"),
        ("batch_size", -1),
        ("max_seq_len", 2),
        ("num_layers", 0),
        ("num_layers", "2"),
        ("frozen_layers", -1),
        ("frozen_layers", None),
        ("prototype_head", "yes"),
        ("learning_rate", 0),
        ("dropout", 1.0),
        ("label_smoothing", -0.1),
        ("label_smoothing", "0.1"),
        ("entity_loss_weight", -1),
        ("entity_loss_weight", None),
        ("pooling", "max"),
        ("lower_case", "yes"),
        ("train_word_embeddings", "no"),
        ("intent_classification", "yes"),
        ("entity_recognition", 1),
        ("entity_crf", None),
        ("out_of_scope_detection", "no"),
        ("precision", "int4"),
        ("precision", None),
        ("ranking_length", -1),
        ("random_seed", None),
        ("model", "/no/such/folder"),
    ],
)
def test_bad_settings_are_refused_before_training(
    setting, value, model_storage, resource, execution_context
):
    config = {**BertIntentClassifier.get_default_config(), setting: value}
    with pytest.raises(
        InvalidConfigException, match=f"BertIntentClassifier: the setting '{setting}'"
    ):
        if setting == "model":
            BertIntentClassifier.fingerprint_addon(config)
        else:
            create(config, model_storage, resource, execution_context)


def test_training_the_word_embeddings_needs_no_layers_kept(
    model_storage, resource, execution_context
):
    config = {"train_word_embeddings": True, "frozen_layers": 2}
    with pytest.raises(InvalidConfigException, match="set 'frozen_layers: 0' to train them"):
        create(config, model_storage, resource, execution_context)


def test_keeping_every_layer_as_pretrained_is_refused_before_training(
    model_storage, resource, execution_context
):
    classifier = create(
        {"num_layers": 3, "frozen_layers": 3}, model_storage, resource, execution_context
    )
    with pytest.raises(InvalidConfigException, match="must be fewer than the 3 layers trained"):
        classifier.train(training_data())


def test_turning_off_both_intents_and_entities_is_refused(
    model_storage, resource, execution_context
):
    config = {"intent_classification": False, "entity_recognition": False}
    with pytest.raises(InvalidConfigException, match="would learn nothing"):
        create(config, model_storage, resource, execution_context)


def test_fingerprint_addon_names_the_encoder_files():
    config = BertIntentClassifier.get_default_config()
    first = BertIntentClassifier.fingerprint_addon(config)
    assert first == BertIntentClassifier.fingerprint_addon(dict(config))
    assert first == BertIntentClassifier.fingerprint_addon({})  # Rasa may pass it without defaults
    assert "bert-for-tf2" in first


def test_loading_with_a_max_seq_len_beyond_the_trained_one_is_refused(trained):
    classifier, storage, resource, context = trained
    with pytest.raises(InvalidConfigException, match="'max_seq_len' must be at most the 64"):
        BertIntentClassifier.load(
            {**classifier.config, "max_seq_len": 600}, storage, resource, context
        )


HOSTILE_TEXTS = [
    "",
    "   \t\n ",
    "x" * 10_000,
    "weather " * 2_000,
    "\N{SLICE OF PIZZA}\N{MUSICAL NOTE}\N{CLOUD WITH RAIN}\ufe0f",
    "明天北京天气怎么样",
    "ما هو الطقس غدا",
    "e\u0301\u0301\u0301 n\u0303",
    "\x00\x01\x07 hi \x1b[31m",
    "\u200b\u200b\ufeff",
    "\ud800 lone surrogate",
    "<script>alert('hi')</script>",
    '{"intent": "greet", "text": [1, 2]}',
    "'; DROP TABLE intents; --",
]


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=range(len(HOSTILE_TEXTS)))
def test_any_text_gets_a_valid_intent_and_ranking(trained, text):
    (message,) = parse(trained[0], text)
    assert message.get("intent")["name"] in EXAMPLES
    ranking = message.get("intent_ranking")
    assert {r["name"] for r in ranking} == set(EXAMPLES)
    assert all(np.isfinite(r["confidence"]) for r in ranking)


def test_messages_at_and_past_max_seq_len_are_classified(trained):
    classifier = copy.copy(trained[0])
    classifier.config = {**classifier.config, "max_seq_len": 16}
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


# Entities: roles, groups and adjacent entities of one type.
@pytest.fixture(scope="module")
def trips(tmp_path_factory):
    """A classifier trained once on TRIPS_NLU, with the storage it persisted to."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    storage = LocalModelStorage(tmp_path_factory.mktemp("trips"))
    context = ExecutionContext(GraphSchema({}), "trips")
    classifier = create({}, storage, Resource("trips"), context)  # the defaults
    classifier.train(RasaYAMLReader().reads(TRIPS_NLU))
    return classifier, storage, context


def entities_of(message):
    return [
        (e["entity"], e["value"], e.get("role"), e.get("group"))
        for e in message.get("entities") or []
    ]


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
