"""Encoders from Hugging Face folders and Google BERT checkpoints, built from tiny random weights."""

import json

import numpy as np
import pytest
from helpers.bert_reference import (
    numpy_bert,
    tiny_hf_weights,
    train_and_reload,
    write_google_folder,
    write_hf_folder,
    TINY_CONFIG,
)
from rasa.shared.exceptions import InvalidConfigException, RasaException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_bert_intent import BertIntentClassifier
from rasa_bert_intent.pretrained.encoder import (
    EncoderNotFound,
    GoogleCheckpointEncoder,
    HuggingFaceEncoder,
    load_pretrained,
)
from rasa_bert_intent.network import IntentNetwork
from rasa_bert_intent.batching import pad

TOKEN_IDS = pad([[2, 5, 8, 9, 10, 3], [2, 11, 12, 3], [2, 3]], 8)


@pytest.fixture(scope="module")
def weights():
    return tiny_hf_weights()


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory, weights):
    return write_hf_folder(tmp_path_factory.mktemp("hf") / "tiny-bert", weights)


@pytest.fixture(scope="module")
def google_folder(tmp_path_factory, weights):
    return write_google_folder(tmp_path_factory.mktemp("google") / "uncased_tiny", weights)


def hidden_states(encoder):
    network = IntentNetwork(encoder.config, num_intents=2, dropout=0.1, pooling="mean")
    network.build_for_any_length()
    not_pretrained = encoder.load_into(network)
    assert not_pretrained == []
    return network.bert([TOKEN_IDS, np.zeros_like(TOKEN_IDS)], training=False).numpy()


@pytest.mark.parametrize(
    "folder_fixture, kind",
    [("hf_folder", HuggingFaceEncoder), ("google_folder", GoogleCheckpointEncoder)],
)
def test_loaded_encoder_reproduces_the_saved_weights(folder_fixture, kind, weights, request):
    encoder = load_pretrained(str(request.getfixturevalue(folder_fixture)))
    assert isinstance(encoder, kind)
    assert encoder.do_lower_case
    hidden = hidden_states(encoder)
    reference = numpy_bert(weights, TINY_CONFIG, TOKEN_IDS)
    real = TOKEN_IDS != 0
    # bert-for-tf2's GELU is the tanh approximation; random weights make it matter more.
    assert np.abs(hidden[real] - reference[real]).max() / np.abs(reference[real]).max() < 2e-3


def test_google_checkpoint_lacking_weights_reports_them(tmp_path, weights):
    partial = {k: v for k, v in weights.items() if not k.startswith("encoder.layer.1.output.")}
    encoder = load_pretrained(str(write_google_folder(tmp_path / "uncased_partial", partial)))
    network = IntentNetwork(encoder.config, num_intents=2, dropout=0.1, pooling="mean")
    network.build_for_any_length()
    not_pretrained = encoder.load_into(network)
    assert len(not_pretrained) == 4
    assert all("layer_1/output" in name for name in not_pretrained)


def test_cased_google_checkpoint_keeps_case(tmp_path, weights):
    encoder = load_pretrained(str(write_google_folder(tmp_path / "cased_tiny", weights)))
    assert not encoder.do_lower_case


def test_classifier_trains_persists_and_loads_with_a_checkpoint_folder(
    hf_folder, google_folder, model_storage, execution_context
):
    data = TrainingData(
        [Message.build(text=t, intent="greet") for t in ("hello", "hi", "good hello")]
        + [
            Message.build(text=t, intent="weather")
            for t in ("rain tomorrow", "snow", "will it rain")
        ]
    )
    for folder in (hf_folder, google_folder):
        before, after, _ = train_and_reload(
            folder, data, model_storage, execution_context, f"classifier-{folder.name}", "rain hello"
        )
        assert before.get("intent")["name"] in {"greet", "weather"}
        assert after.get("intent_ranking") == pytest.approx(before.get("intent_ranking"))


def test_unusable_folders_are_refused_clearly(
    tmp_path, hf_folder, model_storage, execution_context
):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EncoderNotFound, match="has neither tokenizer.json nor vocab.txt"):
        load_pretrained(str(empty))
    (empty / "vocab.txt").write_text("[PAD]\n", encoding="utf-8")
    with pytest.raises(EncoderNotFound, match="neither a Hugging Face model .* it holds vocab.txt"):
        load_pretrained(str(empty))

    deberta = write_hf_folder(tmp_path / "deberta", tiny_hf_weights())
    config = json.loads((deberta / "config.json").read_text())
    (deberta / "config.json").write_text(json.dumps({**config, "model_type": "deberta-v2"}))
    with pytest.raises(EncoderNotFound, match="a deberta-v2 model .*architectures read are bert"):
        load_pretrained(str(deberta))
    classifier = tiny_classifier(deberta, model_storage, execution_context, "deberta")
    with pytest.raises(
        InvalidConfigException,
        match="BertIntentClassifier: the setting 'model'.*architectures read are bert",
    ):
        classifier.train(TrainingData([Message.build(text=t, intent=i) for t, i in TINY_DATA]))

    too_long = {
        **BertIntentClassifier.get_default_config(),
        "model": str(hf_folder),
        "max_seq_len": 64,
    }
    from rasa.engine.storage.resource import Resource

    classifier = BertIntentClassifier.create(
        too_long, model_storage, Resource("too-long"), execution_context
    )
    with pytest.raises(
        InvalidConfigException, match="'max_seq_len' must be at most the encoder's 40"
    ):
        classifier.train(TrainingData([Message.build(text=t, intent=i) for t, i in TINY_DATA]))


def tiny_classifier(folder, model_storage, execution_context, name, **settings):
    from rasa.engine.storage.resource import Resource

    config = {
        **BertIntentClassifier.get_default_config(),
        "model": str(folder),
        # A tiny random encoder, for the plumbing only: a short run that judges no quality.
        "epochs": 3,
        "max_seq_len": 16,
        "batch_size": 4,
        **settings,
    }
    return BertIntentClassifier.create(config, model_storage, Resource(name), execution_context)


TINY_DATA = [
    ("hello", "greet"),
    ("hi", "greet"),
    ("good hello", "greet"),
    ("rain tomorrow", "weather"),
    ("snow", "weather"),
    ("will it rain", "weather"),
    ("play some music", "music"),
]


def test_same_seed_same_data_same_predictions(hf_folder, model_storage, execution_context):
    texts = ["rain hello", "play", "snow snow", ""]
    results = []
    for run in range(2):
        classifier = tiny_classifier(hf_folder, model_storage, execution_context, f"run{run}")
        classifier.train(TrainingData([Message.build(text=t, intent=i) for t, i in TINY_DATA]))
        messages = classifier.process([Message.build(text=t) for t in texts])
        results.append([[r["confidence"] for r in m.get("intent_ranking")] for m in messages])
    np.testing.assert_allclose(results[0], results[1], atol=1e-6)


def test_training_data_edge_cases(hf_folder, model_storage, execution_context, caplog):
    def train(name, pairs):
        classifier = tiny_classifier(hf_folder, model_storage, execution_context, name)
        classifier.train(TrainingData([Message.build(text=t, intent=i) for t, i in pairs]))
        return classifier

    with pytest.raises(
        RasaException, match="one intent only \\('greet'\\).*Add examples of another"
    ):
        train("single", [("hello", "greet"), ("hi", "greet")])

    untrained = train("empty", [])
    assert "has no intent examples" in caplog.text
    (message,) = untrained.process([Message.build(text="hello")])
    assert message.get("intent")["name"] is None

    # One example of an intent, duplicates, the same text under two intents, entity markup.
    odd = TINY_DATA + [("hello", "greet"), ("snow", "greet"), ("see you", "bye")]
    marked = Message.build(
        text="will it snow tomorrow",
        intent="weather",
        entities=[{"start": 8, "end": 12, "value": "snow", "entity": "condition"}],
    )
    classifier = tiny_classifier(hf_folder, model_storage, execution_context, "marked")
    classifier.train(TrainingData([Message.build(text=t, intent=i) for t, i in odd] + [marked]))
    (message,) = classifier.process([Message.build(text="see you")])
    assert {r["name"] for r in message.get("intent_ranking")} == {
        "greet",
        "weather",
        "music",
        "bye",
    }


def test_lower_case_must_agree_with_the_encoder(
    tmp_path, weights, hf_folder, model_storage, execution_context
):
    cased = write_google_folder(tmp_path / "cased_tiny", weights)
    data = TrainingData([Message.build(text=t, intent=i) for t, i in TINY_DATA])
    classifier = tiny_classifier(cased, model_storage, execution_context, "cased", lower_case=True)
    with pytest.raises(
        InvalidConfigException, match="'lower_case' disagrees .* a cased model: set it to false"
    ):
        classifier.train(data)
    classifier = tiny_classifier(
        hf_folder, model_storage, execution_context, "uncased", lower_case=False
    )
    with pytest.raises(InvalidConfigException, match="an uncased model: set it to true"):
        classifier.train(data)
    classifier = tiny_classifier(
        cased, model_storage, execution_context, "follows", lower_case=None
    )
    classifier.train(data)
    assert classifier.trained.tokenizer.token_ids("Hello", 8) != classifier.trained.tokenizer.token_ids("hello", 8)
