"""The Keras network: its own embeddings, which weights training changes and how they are set
by name, the prototype head's start."""

import numpy as np
import pytest
import tensorflow as tf
from helpers.tiny_network import (
    MAX_SEQ_LEN,
    TOKEN_ID_LISTS,
    message,
    network_outputs,
    tiny_network,
    train,
)

from rasa_bert_intent.batching import pad
from rasa_bert_intent.network import PROTOTYPE_SCALE


def test_the_networks_embeddings_give_what_the_bert_layer_gives():
    network = tiny_network()
    batch = pad(TOKEN_ID_LISTS[:3], 16)
    expected = network.bert([batch, np.zeros_like(batch)], training=False).numpy()
    embeddings = network._embeddings(tf.constant(batch), training=False)
    actual = network.bert.encoders_layer(embeddings, mask=batch != 0, training=False).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-6)


@pytest.mark.parametrize("train_word_embeddings", [True, False])
def test_the_word_embeddings_are_fine_tuned_only_when_asked(train_word_embeddings):
    network = tiny_network(train_word_embeddings=train_word_embeddings)
    word_embeddings = network.bert.embeddings_layer.word_embeddings_layer.weights[0]
    dense_kernel = network.dense.kernel
    words_before, dense_before = word_embeddings.numpy(), dense_kernel.numpy()
    train(network, [None] * len(TOKEN_ID_LISTS), epochs=2)  # plumbing: any update will do
    assert np.array_equal(word_embeddings.numpy(), words_before) != train_word_embeddings
    assert not np.allclose(dense_kernel.numpy(), dense_before)


def test_the_kept_weights_are_what_training_changes_and_set_back_by_name():
    network = tiny_network(train_word_embeddings=False)
    kept = network.trained_weights(np.float16)
    assert "embeddings/word_embeddings/embeddings" not in kept  # frozen: read from the encoder
    assert {"encoder/layer_0/intermediate/kernel", "dense/kernel", "logits/bias"} <= set(kept)
    assert all(value.dtype == np.float16 for value in kept.values())
    other = tiny_network()
    other.set_named_weights({name: value.astype(np.float32) for name, value in kept.items()})
    assert np.array_equal(other.logits.kernel.numpy(), kept["logits/kernel"].astype(np.float32))
    with pytest.raises(ValueError, match="'logits/bias' has shape"):
        other.set_named_weights({"logits/bias": np.zeros(5, np.float32)})


def test_the_prototype_head_starts_from_the_directions_to_the_intents_means():
    network = tiny_network()
    labels = np.array([0, 1, 2, 0])
    # Batches of 3 split the 4 messages, so that the vectors of two batches are put together.
    network.start_heads_from_prototypes(TOKEN_ID_LISTS, labels, batch_size=3)
    np.testing.assert_array_equal(network.dense.kernel.numpy(), np.eye(16))
    messages = [message(length) for length in range(3, MAX_SEQ_LEN + 1)]
    outputs = [network_outputs(network, ids) for ids in TOKEN_ID_LISTS + messages]
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


def test_held_layers_stay_as_they_are_while_training_and_are_trained_again_once_released():
    # A fine-tune holds the bottom layers (finetune.HELD_LAYERS); they are not pretrained ones.
    network = tiny_network(train_word_embeddings=False)
    everything = network.trainable_names()
    network.hold(1)
    held = [name for name in everything if name.startswith(("embeddings/", "encoder/layer_0/"))]
    assert held and set(network.trainable_names()) == set(everything) - set(held)
    before = {name: w.numpy().copy() for name, w in network.named_weights().items()}
    train(network, [None] * len(TOKEN_ID_LISTS), epochs=2)  # plumbing: any update will do
    now = network.named_weights()
    assert all(np.array_equal(now[name].numpy(), before[name]) for name in held)
    top = "encoder/layer_1/output/dense/kernel"
    assert not np.allclose(now[top].numpy(), before[top])
    network.hold(0)
    assert network.trainable_names() == everything
    train(network, [None] * len(TOKEN_ID_LISTS), epochs=2)  # plumbing again: any update
    assert not np.allclose(now["encoder/layer_0/output/dense/kernel"].numpy(),
                           before["encoder/layer_0/output/dense/kernel"])
