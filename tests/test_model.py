"""The Keras network: its own embeddings, what training changes, its TensorFlow Lite export."""

import numpy as np
import pytest
import tensorflow as tf
from bert_reference import TINY_CONFIG, TINY_VOCAB

from rasa_bert_intent.model import IntentModel, IntentNetwork
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
    num_entity_tags: int = 0, train_word_embeddings: bool = True, entity_crf: bool = False
) -> IntentModel:
    tf.keras.utils.set_random_seed(3)
    network = IntentNetwork(
        TINY_CONFIG,
        num_intents=3,
        dropout=0.1,
        pooling="mean",
        num_entity_tags=num_entity_tags,
        train_word_embeddings=train_word_embeddings,
        entity_crf=entity_crf,
    )
    return IntentModel(network, MAX_SEQ_LEN)


def train(model: IntentModel, tags: list, epochs: int, intent_loss_weight: float = 1.0) -> None:
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


def test_the_tflite_export_gives_the_networks_probabilities_and_vectors_at_every_length():
    model = tiny_model()
    predictor = Predictor(model.to_tflite(), MAX_SEQ_LEN)
    assert predictor.num_intents == 3 and predictor.num_entity_tags == 0
    # Twice over, so that the interpreter is resized back and forth between buckets.
    probabilities, tag_probabilities, vectors = predictor.predict(
        TOKEN_ID_LISTS + TOKEN_ID_LISTS
    )
    assert tag_probabilities == [None] * 8
    expected = [
        tf.nn.softmax(model.network(pad([ids], bucket_length(len(ids), MAX_SEQ_LEN)))).numpy()[0]
        for ids in TOKEN_ID_LISTS
    ]
    # float16 weights move the probabilities by about 1e-4.
    np.testing.assert_allclose(probabilities, np.array(expected + expected), atol=1e-3)
    assert np.ptp(probabilities[:, 0]) > 1e-3  # the messages get different probabilities
    # The batched vectors of training are the exported model's, whatever the padding.
    expected_vectors = model.sentence_vectors(TOKEN_ID_LISTS)
    assert expected_vectors.shape == (4, predictor.hidden_size)
    np.testing.assert_allclose(vectors, np.concatenate([expected_vectors] * 2), atol=2e-2)
    assert np.ptp(vectors[:4, 0]) > 1e-2


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
    predictor = Predictor(model.to_tflite(), MAX_SEQ_LEN)
    assert (predictor.num_intents, predictor.num_entity_tags) == (3, 3)
    probabilities, tag_probabilities, _ = predictor.predict(TOKEN_ID_LISTS)
    assert probabilities.shape == (4, 3)
    for ids, exported in zip(TOKEN_ID_LISTS, tag_probabilities):
        length = bucket_length(len(ids), MAX_SEQ_LEN)
        _, logits, _ = model.network.intent_and_entity_tag_logits(pad([ids], length), False)
        expected_probabilities = tf.nn.softmax(logits).numpy()[0, : len(ids)]
        np.testing.assert_allclose(exported, expected_probabilities, atol=1e-3)


@pytest.mark.parametrize("train_word_embeddings", [True, False])
def test_the_word_embeddings_are_fine_tuned_only_when_asked(train_word_embeddings):
    model = tiny_model(train_word_embeddings=train_word_embeddings)
    word_embeddings = model.network.bert.embeddings_layer.word_embeddings_layer.weights[0]
    dense_kernel = model.network.dense.kernel
    words_before, dense_before = word_embeddings.numpy(), dense_kernel.numpy()
    train(model, [None] * len(TOKEN_ID_LISTS), epochs=2)
    assert np.array_equal(word_embeddings.numpy(), words_before) != train_word_embeddings
    assert not np.allclose(dense_kernel.numpy(), dense_before)


def _tflite(outputs, signature: bool = True) -> bytes:
    """A TensorFlow Lite model of one `token_ids` input and the named outputs."""
    holder = tf.Module()
    holder.scale = tf.Variable(2.0)

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.int32, name="token_ids")])
    def function(token_ids):
        values = tf.cast(token_ids, tf.float32) * holder.scale
        return {name: values[:, :3] for name in outputs}

    trackable = holder if signature else None
    return tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], trackable
    ).convert()


@pytest.mark.parametrize(
    "outputs, signature",
    [
        (["probabilities"], True),  # no sentence vector: an export of an older version
        (["probabilities", "sentence_vector", "logits"], True),
        (["probabilities", "sentence_vector"], False),
    ],
)
def test_a_model_of_other_outputs_is_refused(outputs, signature):
    with pytest.raises(ValueError, match="not those of an intent model"):
        Predictor(_tflite(outputs, signature), MAX_SEQ_LEN)
