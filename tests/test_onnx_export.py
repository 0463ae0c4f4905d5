"""The ONNX export: the network's outputs at every length, fp32 and int8, beside the pretrained
encoder's vectors, written from the weights alone."""

import importlib.metadata
import sys

import numpy as np
import onnx
import pytest
from helpers.bert_reference import TINY_CONFIG, TINY_VOCAB
from helpers.tiny_network import (
    MAX_SEQ_LEN,
    TOKEN_ID_LISTS,
    built_network,
    kept_layers_network,
    message,
    network_outputs,
    pretrained_encoder,
    tiny_network,
    train,
)

from rasa_bert_intent import onnx_graph, onnx_kept
from rasa_bert_intent.entities import UNTAGGED
from rasa_bert_intent.network import IntentNetwork
from rasa_bert_intent.onnx_export import PRECISIONS
from rasa_bert_intent.predictor import Predictor


@pytest.fixture(scope="module")
def tagging_network() -> IntentNetwork:
    return tiny_network(num_entity_tags=3)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_onnx_export_gives_the_networks_outputs_at_every_length_bucket(
    tagging_network, precision
):
    predictor = Predictor(tagging_network.to_onnx(precision), MAX_SEQ_LEN, precision)
    assert (predictor.num_intents, predictor.num_entity_tags) == (3, 3)
    assert predictor.hidden_size == TINY_CONFIG["hidden_size"]
    # Every bucket of MAX_SEQ_LEN 24 (8, 16 and 24), twice over, in one call and one by one.
    token_id_lists = [message(length) for length in (3, 5, 8, 9, 16, 17, MAX_SEQ_LEN)] * 2
    together = predictor.predict(token_id_lists)
    for row, token_ids in enumerate(token_id_lists):
        alone = predictor.predict([token_ids])
        expected = network_outputs(tagging_network, token_ids)
        exported = (together[0][row], together[1][row], together[2][row])
        for actual, wanted in zip(exported, expected):
            assert actual.shape == wanted.shape
            # fp32 is the float arithmetic in another order. int8 moves this untrained tiny
            # network's probabilities by up to 0.15; test_classifier compares it on sentences.
            if precision == "fp32":
                np.testing.assert_allclose(actual, wanted, atol=1e-5)
        # A message gets the same outputs alone as among others (fp32 batches round
        # differently in the last bit; int8 runs each message alone).
        for actual, single in zip(exported, (alone[0][0], alone[1][0], alone[2][0])):
            np.testing.assert_allclose(actual, single, atol=1e-6)
    assert np.ptp(together[0][:, 0]) > 1e-3  # the messages get different probabilities


@pytest.mark.parametrize(
    "pooling, activation", [("cls", "gelu"), ("mean", "relu"), ("cls", "tanh"), ("mean", "linear")]
)
def test_the_onnx_graph_follows_the_networks_pooling_and_activation(pooling, activation):
    network = tiny_network(num_entity_tags=2, pooling=pooling, activation=activation)
    predictor = Predictor(network.to_onnx("fp32"), MAX_SEQ_LEN, "fp32")
    exported = predictor.predict(TOKEN_ID_LISTS)
    for row, token_ids in enumerate(TOKEN_ID_LISTS):
        expected = network_outputs(network, token_ids)
        for actual, wanted in zip((exported[0][row], exported[1][row], exported[2][row]), expected):
            np.testing.assert_allclose(actual, wanted, atol=1e-5)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_export_also_gives_the_pretrained_encoders_mean_vectors(tagging_network, precision):
    # The export runs the pretrained encoder beside the network, one word table for both.
    pretrained, reference = pretrained_encoder(tagging_network)
    table = onnx_graph.WORD_TABLE
    exported = tagging_network.to_onnx(precision, reference)
    initializers = onnx.load_from_string(exported).graph.initializer
    tables = [i.name for i in initializers if "word_emb" in i.name]
    assert tables in ([table], [table, f"{table}/scale"])
    predictor = Predictor(exported, MAX_SEQ_LEN, precision)
    assert predictor.reference_size == TINY_CONFIG["hidden_size"]
    without = Predictor(tagging_network.to_onnx(precision), MAX_SEQ_LEN, precision)
    assert without.reference_size == 0 and without.predict(TOKEN_ID_LISTS).reference_vectors is None
    outputs, alone = predictor.predict(TOKEN_ID_LISTS), without.predict(TOKEN_ID_LISTS)
    # The network's own outputs are those of the model without the reference.
    for name in ("probabilities", "vectors"):
        np.testing.assert_allclose(getattr(outputs, name), getattr(alone, name), atol=1e-6)
    for row, token_ids in enumerate(TOKEN_ID_LISTS):
        wanted = network_outputs(pretrained, token_ids)[2]  # its mean-pooled vector
        atol = 1e-5 if precision == "fp32" else 0.15 * np.abs(wanted).max()
        np.testing.assert_allclose(outputs.reference_vectors[row], wanted, atol=atol)


def test_blocks_of_rows_give_the_same_model_and_a_changed_row_its_own_table(
    tagging_network, monkeypatch
):
    # The export quantises weights and compares word tables a few rows at a time, so that it
    # holds no float copy of a whole table: the blocks must not change what it writes.
    _, reference = pretrained_encoder(tagging_network)
    whole = tagging_network.to_onnx("int8", reference)
    monkeypatch.setattr(onnx_graph, "BLOCK_ROWS", 3)
    assert len(TINY_VOCAB) > 3 * 3
    assert tagging_network.to_onnx("int8", reference) == whole
    table = onnx_graph.WORD_TABLE
    changed = {**reference, table: reference[table].copy()}
    changed[table][-1] += 1.0  # in the last block only
    exported = onnx.load_from_string(tagging_network.to_onnx("int8", changed))
    assert onnx_graph.REFERENCE + table in [i.name for i in exported.graph.initializer]


def test_the_export_needs_no_tf2onnx(tagging_network, monkeypatch):
    # The graph is written from the weights; tf2onnx is no dependency any more.
    requirements = importlib.metadata.requires("rasa-bert-intent")
    assert not any(requirement.startswith("tf2onnx") for requirement in requirements)
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # importing it now raises ImportError
    for precision in PRECISIONS:
        predictor = Predictor(tagging_network.to_onnx(precision), MAX_SEQ_LEN, precision)
        assert predictor.predict(TOKEN_ID_LISTS)[0].shape == (4, 3)


def test_kept_layers_stay_pretrained_and_the_export_computes_them_once_for_both_encoders():
    network = kept_layers_network()
    assert network.entity_layers() == [1, 3]
    pretrained = {name: w.numpy().copy() for name, w in network.named_weights().items()}
    kept = [n for n in pretrained if n.startswith(("embeddings/", "encoder/layer_0/"))]
    assert kept and set(network.trainable_names()).isdisjoint(kept)
    tags = [[UNTAGGED, *[1 + word % 2 for word in ids[1:-1]], UNTAGGED] for ids in TOKEN_ID_LISTS]
    train(network, tags, epochs=5)  # plumbing: any update will do
    now = network.named_weights()
    assert all(np.array_equal(now[name].numpy(), pretrained[name]) for name in kept)
    trained = "encoder/layer_3/output/dense/kernel"
    assert not np.allclose(now[trained].numpy(), pretrained[trained])

    reference = {name: pretrained[name] for name in network.encoder_weight_names()}
    exported = network.to_onnx("fp32", reference)
    stored = {i.name for i in onnx.load_from_string(exported).graph.initializer}
    ref = onnx_graph.REFERENCE
    shared = (f"{ref}embeddings/", f"{ref}encoder/layer_0/")
    assert not any(name.startswith(shared) for name in stored)
    assert f"{ref}encoder/layer_1/intermediate/kernel" in stored
    config = {**TINY_CONFIG, "num_hidden_layers": 4}
    pretrained = built_network(config)
    pretrained.set_encoder_weights(reference)
    outputs = Predictor(exported, MAX_SEQ_LEN, "fp32").predict(TOKEN_ID_LISTS)
    for row, token_ids in enumerate(TOKEN_ID_LISTS):
        probabilities, tag_probabilities, vector = network_outputs(network, token_ids)
        np.testing.assert_allclose(outputs.probabilities[row], probabilities, atol=1e-5)
        np.testing.assert_allclose(outputs.tag_probabilities[row], tag_probabilities, atol=1e-5)
        np.testing.assert_allclose(outputs.vectors[row], vector, atol=1e-5)
        wanted = network_outputs(pretrained, token_ids)[2]
        np.testing.assert_allclose(outputs.reference_vectors[row], wanted, atol=1e-5)
    # The model's files leave out what the encoder gives again: its layers above the shared
    # one, and the word table the network kept as pretrained.
    kept = onnx.load_from_string(onnx_kept.without_pretrained(exported)).graph.initializer
    assert not any(i.name.startswith(ref) or "word_emb" in i.name for i in kept)
    assert "encoder/layer_0/intermediate/kernel" in {i.name for i in kept}
    whole = onnx_kept.with_pretrained(onnx_kept.without_pretrained(exported), lambda: reference)
    np.testing.assert_array_equal(
        Predictor(whole, MAX_SEQ_LEN, "fp32").predict(TOKEN_ID_LISTS).reference_vectors,
        outputs.reference_vectors,
    )
