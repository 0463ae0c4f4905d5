"""A tiny random BERT network (helpers/bert_reference.py's architecture) and messages of every
length bucket, for the tests of the network, its training, its export and the predictor."""

import tensorflow as tf

from helpers.bert_reference import TINY_CONFIG, TINY_VOCAB
from rasa_bert_intent.batching import bucket_length, pad
from rasa_bert_intent.network import IntentNetwork
from rasa_bert_intent.onnx_graph import WORD_TABLE
from rasa_bert_intent.trainer import NetworkTrainer

MAX_SEQ_LEN = 24
CLS, SEP = TINY_VOCAB.index("[CLS]"), TINY_VOCAB.index("[SEP]")
FIRST_WORD = TINY_VOCAB.index("[MASK]") + 1


def message(length: int) -> list:
    words = [FIRST_WORD + i % (len(TINY_VOCAB) - FIRST_WORD) for i in range(length - 2)]
    return [CLS, *words, SEP]


# Buckets 8, 8, 16 and 24.
TOKEN_ID_LISTS = [message(3), message(5), message(9), message(MAX_SEQ_LEN)]


def tiny_network(
    num_entity_tags: int = 0,
    train_word_embeddings: bool = True,
    entity_crf: bool = False,
    pooling: str = "mean",
    activation: str = "gelu",
    num_intents: int = 3,
    seed: int = 3,
) -> IntentNetwork:
    """The tiny network, built with its weights drawn from `seed`."""
    tf.keras.utils.set_random_seed(seed)
    network = IntentNetwork(
        {**TINY_CONFIG, "hidden_act": activation},
        num_intents=num_intents,
        dropout=0.1,
        pooling=pooling,
        num_entity_tags=num_entity_tags,
        train_word_embeddings=train_word_embeddings,
        entity_crf=entity_crf,
    )
    network.build_for_any_length()
    return network


def train(
    network: IntentNetwork, tags: list, epochs: int, intent_loss_weight: float = 1.0
) -> None:
    # NetworkTrainer.train takes every value explicitly (the component's defaults are chosen in
    # schedule.py, tested in test_schedule.py); a tiny network on 4 sequences, fast.
    NetworkTrainer(network, MAX_SEQ_LEN).train(
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


def network_outputs(network: IntentNetwork, token_ids: list) -> tuple:
    """The TensorFlow network's intent and tag probabilities and sentence vector for one
    message, padded to its length bucket as the predictor pads it."""
    batch = pad([token_ids], bucket_length(len(token_ids), MAX_SEQ_LEN))
    logits, tag_logits, pooled = network.intent_and_entity_tag_logits(batch, False)
    tags = None if tag_logits is None else tf.nn.softmax(tag_logits).numpy()[0, : len(token_ids)]
    return tf.nn.softmax(logits).numpy()[0], tags, pooled.numpy()[0]


def built_network(config: dict, num_intents: int = 1) -> IntentNetwork:
    """A network of the architecture `config` without dropout, its weights built: what stands
    for a pretrained encoder, or reads one."""
    network = IntentNetwork(config, num_intents, 0.0, "mean")
    network.build_for_any_length()
    return network


def pretrained_encoder(network: IntentNetwork) -> tuple:
    """A "pretrained" encoder of one more layer than the network's, whose word table is the
    network's own (as training keeps it by default), and its weights."""
    tf.keras.utils.set_random_seed(5)
    config = {**TINY_CONFIG, "num_hidden_layers": TINY_CONFIG["num_hidden_layers"] + 1}
    pretrained = built_network(config)

    def weights(of):
        return dict(zip(of.encoder_weight_names(), of.bert.get_weights()))

    reference = {**weights(pretrained), WORD_TABLE: weights(network)[WORD_TABLE]}
    pretrained.set_encoder_weights(reference)
    return pretrained, reference


def kept_layers_network() -> IntentNetwork:
    """A tiny network of 4 layers whose embeddings and bottom layer stay as pretrained, with a
    tagging head (on the mean of its second and top layers)."""
    tf.keras.utils.set_random_seed(3)
    config = {**TINY_CONFIG, "num_hidden_layers": 4}
    network = IntentNetwork(
        config, 3, 0.1, "mean", num_entity_tags=3, train_word_embeddings=False, frozen_layers=1
    )
    network.build_for_any_length()
    return network
