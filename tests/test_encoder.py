"""The embedded encoder, built in bert-for-tf2, against a plain numpy forward pass of its weights."""

import numpy as np
import pytest
from safetensors.numpy import load_file

from bert_reference import numpy_bert
from rasa_bert_intent.encoder import (
    DEFAULT_MODEL,
    EncoderNotFound,
    HF_WEIGHTS,
    fingerprint,
    load_pretrained,
    model_folder,
)
from rasa_bert_intent.model import IntentNetwork
from rasa_bert_intent.tokenization import WordPieceTokenizer, pad

SENTENCES = [
    "What will the weather be this year in Horseshoe Lake State Fish and Wildlife Area?",
    "play some jazz",
    "Book a table for two at a Szechuan restaurant in Baltimore tonight",
]


def test_default_encoder_reproduces_the_original_hidden_states():
    encoder = load_pretrained(DEFAULT_MODEL)
    tokenizer = WordPieceTokenizer(encoder.vocab_file, encoder.do_lower_case)
    token_ids = pad([tokenizer.token_ids(s, 64) for s in SENTENCES], 24)
    assert (token_ids == 0).any(), "the batch must contain padding"

    network = IntentNetwork(encoder.config, num_intents=2, dropout=0.1, pooling="mean")
    network.build_for_any_length()
    assert encoder.load_into(network) == []
    hidden = network.bert([token_ids, np.zeros_like(token_ids)], training=False).numpy()

    reference = numpy_bert(
        load_file(str(model_folder(DEFAULT_MODEL) / HF_WEIGHTS)), encoder.config, token_ids
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
