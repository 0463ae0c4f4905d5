"""The Keras network: its own embeddings, what training changes, its ONNX export."""

import importlib.metadata
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tensorflow as tf
from bert_reference import TINY_CONFIG, TINY_VOCAB
import onnx
from onnx import TensorProto, helper

from rasa_bert_intent import onnx_export
from rasa_bert_intent.model import PROTOTYPE_SCALE, IntentModel, IntentNetwork
from rasa_bert_intent.onnx_export import PRECISIONS
from rasa_bert_intent.predictor import Predictor
from rasa_bert_intent.tokenization import UNTAGGED, bucket_length, pad

MAX_SEQ_LEN = 24
CLS, SEP = TINY_VOCAB.index("[CLS]"), TINY_VOCAB.index("[SEP]")
FIRST_WORD = TINY_VOCAB.index("[MASK]") + 1


def message(length: int) -> list:
    words = [FIRST_WORD + i % (len(TINY_VOCAB) - FIRST_WORD) for i in range(length - 2)]
    return [CLS, *words, SEP]


# Buckets 8, 8, 16 and 24.
TOKEN_ID_LISTS = [message(3), message(5), message(9), message(MAX_SEQ_LEN)]


def tiny_model(
    num_entity_tags: int = 0,
    train_word_embeddings: bool = True,
    entity_crf: bool = False,
    pooling: str = "mean",
    activation: str = "gelu",
) -> IntentModel:
    tf.keras.utils.set_random_seed(3)
    network = IntentNetwork(
        {**TINY_CONFIG, "hidden_act": activation},
        num_intents=3,
        dropout=0.1,
        pooling=pooling,
        num_entity_tags=num_entity_tags,
        train_word_embeddings=train_word_embeddings,
        entity_crf=entity_crf,
    )
    return IntentModel(network, MAX_SEQ_LEN)


def train(model: IntentModel, tags: list, epochs: int, intent_loss_weight: float = 1.0) -> None:
    # IntentModel.train takes every value explicitly (the component's defaults are chosen in
    # training.schedule, tested in test_training.py); a tiny network on 4 sequences, fast.
    model.train(
        TOKEN_ID_LISTS,
        [0, 1, 2, 0],
        tags,
        intent_loss_weight=intent_loss_weight,
        entity_loss_weight=1.0,
        epochs=epochs,
        batch_size=4,
        learning_rate=1e-2,
        label_smoothing=0.0,
        seed=0,
        show_progress=False,
    )


def test_the_networks_embeddings_give_what_the_bert_layer_gives():
    network = tiny_model().network
    batch = pad(TOKEN_ID_LISTS[:3], 16)
    expected = network.bert([batch, np.zeros_like(batch)], training=False).numpy()
    embeddings = network._embeddings(tf.constant(batch), training=False)
    actual = network.bert.encoders_layer(embeddings, mask=batch != 0, training=False).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-6)


def network_outputs(model: IntentModel, token_ids: list) -> tuple:
    """The TensorFlow network's intent and tag probabilities and sentence vector for one
    message, padded to its length bucket as the predictor pads it."""
    batch = pad([token_ids], bucket_length(len(token_ids), MAX_SEQ_LEN))
    logits, tag_logits, pooled = model.network.intent_and_entity_tag_logits(batch, False)
    tags = None if tag_logits is None else tf.nn.softmax(tag_logits).numpy()[0, : len(token_ids)]
    return tf.nn.softmax(logits).numpy()[0], tags, pooled.numpy()[0]


@pytest.fixture(scope="module")
def tagging_model() -> IntentModel:
    return tiny_model(num_entity_tags=3)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_onnx_export_gives_the_networks_outputs_at_every_length_bucket(
    tagging_model, precision
):
    predictor = Predictor(tagging_model.to_onnx(precision), MAX_SEQ_LEN, precision)
    assert (predictor.num_intents, predictor.num_entity_tags) == (3, 3)
    assert predictor.hidden_size == TINY_CONFIG["hidden_size"]
    # Every bucket of MAX_SEQ_LEN 24 (8, 16 and 24), twice over, in one call and one by one.
    token_id_lists = [message(length) for length in (3, 5, 8, 9, 16, 17, MAX_SEQ_LEN)] * 2
    together = predictor.predict(token_id_lists)
    for row, token_ids in enumerate(token_id_lists):
        alone = predictor.predict([token_ids])
        expected = network_outputs(tagging_model, token_ids)
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
    model = tiny_model(num_entity_tags=2, pooling=pooling, activation=activation)
    predictor = Predictor(model.to_onnx("fp32"), MAX_SEQ_LEN, "fp32")
    exported = predictor.predict(TOKEN_ID_LISTS)
    for row, token_ids in enumerate(TOKEN_ID_LISTS):
        expected = network_outputs(model, token_ids)
        for actual, wanted in zip((exported[0][row], exported[1][row], exported[2][row]), expected):
            np.testing.assert_allclose(actual, wanted, atol=1e-5)


def pretrained_encoder(model: IntentModel) -> tuple:
    """A "pretrained" encoder of one more layer than the model's, whose word table is the
    model's own (as training keeps it by default), and its weights."""
    tf.keras.utils.set_random_seed(5)
    config = {**TINY_CONFIG, "num_hidden_layers": TINY_CONFIG["num_hidden_layers"] + 1}
    pretrained = IntentModel(IntentNetwork(config, 1, 0.0, "mean"), MAX_SEQ_LEN)
    def weights(network):
        return dict(zip(network.encoder_weight_names(), network.bert.get_weights()))

    table = onnx_export.WORD_TABLE
    reference = {**weights(pretrained.network), table: weights(model.network)[table]}
    pretrained.network.set_encoder_weights(reference)
    return pretrained, reference


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_export_also_gives_the_pretrained_encoders_mean_vectors(tagging_model, precision):
    # The export runs the pretrained encoder beside the network, one word table for both.
    pretrained, reference = pretrained_encoder(tagging_model)
    table = onnx_export.WORD_TABLE
    exported = tagging_model.to_onnx(precision, reference)
    initializers = onnx.load_from_string(exported).graph.initializer
    tables = [i.name for i in initializers if "word_emb" in i.name]
    assert tables in ([table], [table, f"{table}/scale"])
    predictor = Predictor(exported, MAX_SEQ_LEN, precision)
    assert predictor.reference_size == TINY_CONFIG["hidden_size"]
    without = Predictor(tagging_model.to_onnx(precision), MAX_SEQ_LEN, precision)
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
    tagging_model, monkeypatch
):
    # The export quantises weights and compares word tables a few rows at a time, so that it
    # holds no float copy of a whole table: the blocks must not change what it writes.
    _, reference = pretrained_encoder(tagging_model)
    whole = tagging_model.to_onnx("int8", reference)
    monkeypatch.setattr(onnx_export, "BLOCK_ROWS", 3)
    assert len(TINY_VOCAB) > 3 * 3
    assert tagging_model.to_onnx("int8", reference) == whole
    table = onnx_export.WORD_TABLE
    changed = {**reference, table: reference[table].copy()}
    changed[table][-1] += 1.0  # in the last block only
    exported = onnx.load_from_string(tagging_model.to_onnx("int8", changed))
    assert onnx_export.REFERENCE + table in [i.name for i in exported.graph.initializer]


def test_the_export_needs_no_tf2onnx(tagging_model, monkeypatch):
    # The graph is written from the weights; tf2onnx is no dependency any more.
    requirements = importlib.metadata.requires("rasa-bert-intent")
    assert not any(requirement.startswith("tf2onnx") for requirement in requirements)
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # importing it now raises ImportError
    for precision in PRECISIONS:
        predictor = Predictor(tagging_model.to_onnx(precision), MAX_SEQ_LEN, precision)
        assert predictor.predict(TOKEN_ID_LISTS)[0].shape == (4, 3)


def test_concurrent_calls_give_the_results_of_calls_one_at_a_time(tagging_model):
    predictor = Predictor(tagging_model.to_onnx("int8"), MAX_SEQ_LEN, "int8")
    token_id_lists = [message(length) for length in range(3, MAX_SEQ_LEN + 1)]
    expected = [predictor.predict([token_ids]) for token_ids in token_id_lists]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda ids: predictor.predict([ids]), token_id_lists * 5))
    for result, wanted in zip(results, expected * 5):
        for actual, single in zip(result[:3], wanted[:3]):
            np.testing.assert_array_equal(actual[0], single[0])


@pytest.mark.parametrize(
    "intent_loss_weight, entity_crf", [(1.0, False), (0.0, False), (1.0, True)]
)
def test_the_entity_tagging_head_learns_its_tags_and_goes_into_the_export(
    intent_loss_weight, entity_crf
):
    model = tiny_model(num_entity_tags=3, entity_crf=entity_crf)
    # Tag 1 or 2 by the word's parity, so that the head has something to learn.
    tags = [[UNTAGGED, *[1 + word % 2 for word in ids[1:-1]], UNTAGGED] for ids in TOKEN_ID_LISTS]
    batch, expected = pad(TOKEN_ID_LISTS, 24), pad(tags, 24, UNTAGGED)
    _, tag_logits_before, _ = model.network.intent_and_entity_tag_logits(batch, False)
    intent_kernel_before = model.network.logits.kernel.numpy()
    # The last message has no tags: the CRF's loss must skip it, not turn to NaN.
    tags[-1] = None
    expected[-1] = UNTAGGED
    # A tiny network on 4 sequences (the component's schedule is test_training's): 40 passes
    # make it learn them, which is what this test checks it can.
    train(model, tags, epochs=40, intent_loss_weight=intent_loss_weight)
    transitions = model.network.entity_transitions
    assert (transitions is not None) == entity_crf
    if entity_crf:  # learned: tag 1 and 2 alternate, so 1 -> 2 beats 1 -> 1
        assert np.isfinite(transitions.numpy()).all()
        assert transitions[1, 2] > transitions[1, 1]
    _, tag_logits, _ = model.network.intent_and_entity_tag_logits(batch, False)
    is_tagged = expected != UNTAGGED
    assert (tag_logits.numpy().argmax(-1)[is_tagged] == expected[is_tagged]).all()
    assert not np.allclose(tag_logits, tag_logits_before)
    # Without the intent loss the intent head keeps its initial weights.
    intent_kernel_kept = np.array_equal(model.network.logits.kernel.numpy(), intent_kernel_before)
    assert intent_kernel_kept == (intent_loss_weight == 0)
    predictor = Predictor(model.to_onnx("fp32"), MAX_SEQ_LEN, "fp32")
    probabilities, tag_probabilities, _, _ = predictor.predict(TOKEN_ID_LISTS)
    assert probabilities.shape == (4, 3)
    for ids, exported in zip(TOKEN_ID_LISTS, tag_probabilities):
        np.testing.assert_allclose(exported, network_outputs(model, ids)[1], atol=1e-5)


@pytest.mark.parametrize("train_word_embeddings", [True, False])
def test_the_word_embeddings_are_fine_tuned_only_when_asked(train_word_embeddings):
    model = tiny_model(train_word_embeddings=train_word_embeddings)
    word_embeddings = model.network.bert.embeddings_layer.word_embeddings_layer.weights[0]
    dense_kernel = model.network.dense.kernel
    words_before, dense_before = word_embeddings.numpy(), dense_kernel.numpy()
    train(model, [None] * len(TOKEN_ID_LISTS), epochs=2)  # plumbing: any update will do
    assert np.array_equal(word_embeddings.numpy(), words_before) != train_word_embeddings
    assert not np.allclose(dense_kernel.numpy(), dense_before)


def test_the_kept_weights_are_what_training_changes_and_set_back_by_name():
    model = tiny_model(train_word_embeddings=False)
    kept = model.network.trained_weights(np.float16)
    assert "embeddings/word_embeddings/embeddings" not in kept  # frozen: read from the encoder
    assert {"encoder/layer_0/intermediate/kernel", "dense/kernel", "logits/bias"} <= set(kept)
    assert all(value.dtype == np.float16 for value in kept.values())
    other = tiny_model()
    other.network.set_named_weights({name: value.astype(np.float32) for name, value in kept.items()})
    assert np.array_equal(other.network.logits.kernel.numpy(), kept["logits/kernel"].astype(np.float32))
    with pytest.raises(ValueError, match="'logits/bias' has shape"):
        other.network.set_named_weights({"logits/bias": np.zeros(5, np.float32)})


def test_a_fractional_number_of_epochs_trains_that_share_of_the_last_pass(monkeypatch):
    model = tiny_model()
    make_step, steps = model._train_step, []

    def counting_step(*args):
        step = make_step(*args)
        return lambda *batch: steps.append(1) or step(*batch)

    monkeypatch.setattr(model, "_train_step", counting_step)
    # epochs is the setting under test; batch 1 makes the step count exact; the rest is plumbing.
    model.train(TOKEN_ID_LISTS, [0, 1, 2, 0], [None] * 4, intent_loss_weight=1.0,
                entity_loss_weight=0.0, epochs=1.5, batch_size=1, learning_rate=1e-3,
                label_smoothing=0.0, seed=0, show_progress=False)
    assert len(steps) == 6  # 4 batches of one a pass: one pass and half of the next


def _onnx_model(outputs) -> bytes:
    """An ONNX model of one `token_ids` input `[batch, 3]` and the named outputs."""
    values = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Cast", ["token_ids"], ["values"], to=TensorProto.FLOAT)]
        + [helper.make_node("Identity", ["values"], [name]) for name in outputs],
        "not_an_intent_model",
        [values("token_ids", TensorProto.INT32, ["batch", 3])],
        [values(name, TensorProto.FLOAT, ["batch", 3]) for name in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_a_model_of_the_right_outputs_is_read():
    predictor = Predictor(_onnx_model(["probabilities", "sentence_vector"]), MAX_SEQ_LEN, "fp32")
    assert (predictor.num_intents, predictor.num_entity_tags, predictor.hidden_size) == (3, 0, 3)


@pytest.mark.parametrize(
    "outputs",
    [
        ["probabilities"],  # no sentence vector
        ["probabilities", "sentence_vector", "logits"],
    ],
)
def test_a_model_of_other_outputs_is_refused(outputs):
    with pytest.raises(ValueError, match="not those of an intent model"):
        Predictor(_onnx_model(outputs), MAX_SEQ_LEN, "fp32")


@pytest.mark.parametrize("content", [b"", b"not a model", b"\x08\x07" * 100])
def test_bytes_that_are_no_onnx_model_are_refused(content):
    with pytest.raises(ValueError, match="ONNX Runtime cannot load it"):
        Predictor(content, MAX_SEQ_LEN, "fp32")


def kept_layers_model() -> IntentModel:
    """A tiny network of 4 layers whose embeddings and bottom layer stay as pretrained, with a
    tagging head (on the mean of its second and top layers)."""
    tf.keras.utils.set_random_seed(3)
    config = {**TINY_CONFIG, "num_hidden_layers": 4}
    network = IntentNetwork(
        config, 3, 0.1, "mean", num_entity_tags=3, train_word_embeddings=False, frozen_layers=1
    )
    return IntentModel(network, MAX_SEQ_LEN)


def test_kept_layers_stay_pretrained_and_the_export_computes_them_once_for_both_encoders():
    model = kept_layers_model()
    network = model.network
    assert network.entity_layers() == [1, 3]
    pretrained = {name: w.numpy().copy() for name, w in network.named_weights().items()}
    kept = [n for n in pretrained if n.startswith(("embeddings/", "encoder/layer_0/"))]
    assert kept and set(network.trainable_names()).isdisjoint(kept)
    tags = [[UNTAGGED, *[1 + word % 2 for word in ids[1:-1]], UNTAGGED] for ids in TOKEN_ID_LISTS]
    train(model, tags, epochs=5)  # plumbing: any update will do
    now = network.named_weights()
    assert all(np.array_equal(now[name].numpy(), pretrained[name]) for name in kept)
    trained = "encoder/layer_3/output/dense/kernel"
    assert not np.allclose(now[trained].numpy(), pretrained[trained])

    reference = {name: pretrained[name] for name in network.encoder_weight_names()}
    exported = model.to_onnx("fp32", reference)
    stored = {i.name for i in onnx.load_from_string(exported).graph.initializer}
    ref = onnx_export.REFERENCE
    shared = (f"{ref}embeddings/", f"{ref}encoder/layer_0/")
    assert not any(name.startswith(shared) for name in stored)
    assert f"{ref}encoder/layer_1/intermediate/kernel" in stored
    config = {**TINY_CONFIG, "num_hidden_layers": 4}
    as_pretrained = IntentModel(IntentNetwork(config, 1, 0.0, "mean"), MAX_SEQ_LEN)
    as_pretrained.network.set_encoder_weights(reference)
    outputs = Predictor(exported, MAX_SEQ_LEN, "fp32").predict(TOKEN_ID_LISTS)
    for row, token_ids in enumerate(TOKEN_ID_LISTS):
        probabilities, tag_probabilities, vector = network_outputs(model, token_ids)
        np.testing.assert_allclose(outputs.probabilities[row], probabilities, atol=1e-5)
        np.testing.assert_allclose(outputs.tag_probabilities[row], tag_probabilities, atol=1e-5)
        np.testing.assert_allclose(outputs.vectors[row], vector, atol=1e-5)
        wanted = network_outputs(as_pretrained, token_ids)[2]
        np.testing.assert_allclose(outputs.reference_vectors[row], wanted, atol=1e-5)


def test_the_prototype_head_starts_from_the_directions_to_the_intents_means():
    model = tiny_model()
    labels = np.array([0, 1, 2, 0])
    # Batches of 3 split the 4 messages, so that the vectors of two batches are put together.
    model.network.start_heads_from_prototypes(TOKEN_ID_LISTS, labels, batch_size=3)
    np.testing.assert_array_equal(model.network.dense.kernel.numpy(), np.eye(16))
    messages = [message(length) for length in range(3, MAX_SEQ_LEN + 1)]
    outputs = [network_outputs(model, ids) for ids in TOKEN_ID_LISTS + messages]
    vectors = np.tanh([vector for _, _, vector in outputs])
    means = np.stack([vectors[:4][labels == label].mean(axis=0) for label in range(3)])
    directions = means - means.mean(axis=0)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    spread = np.linalg.norm(vectors[:4] - means.mean(axis=0), axis=1).mean()
    logits = PROTOTYPE_SCALE / spread * vectors @ directions.T
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    probabilities = np.array([probabilities for probabilities, _, _ in outputs])
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert len(set(probabilities.argmax(axis=1).tolist())) == 3  # it tells intents apart
