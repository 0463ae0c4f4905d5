"""Training of an `IntentNetwork`: Adam on batches of one length bucket, the intent loss and the
entity tagging loss (each word's tag alone, or a CRF over the words)."""

import logging
import math
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf
from rasa.utils.tensorflow.crf import crf_log_likelihood
from tqdm import tqdm

from rasa_bert_intent.batching import length_batches, pad
from rasa_bert_intent.entities import UNTAGGED
from rasa_bert_intent.network import IntentNetwork

logger = logging.getLogger(__name__)

# Batches between two updates of the training progress bar's figures.
PROGRESS_EVERY = 10


def _entity_tag_loss(
    entity_tags: tf.Tensor, tag_logits: tf.Tensor, transitions: Optional[tf.Variable]
) -> tf.Tensor:
    """Mean loss per tagged word piece (each word's first): cross-entropy of each alone or,
    with `transitions`, the CRF's negative log-likelihood of each sequence; 0 when none."""
    is_tagged = tf.not_equal(entity_tags, UNTAGGED)
    if transitions is not None:
        # The tagged positions of each row moved to its front, in order: the word sequence.
        order = tf.argsort(tf.cast(~is_tagged, tf.int32), axis=1, stable=True)
        lengths = tf.reduce_sum(tf.cast(is_tagged, tf.int32), axis=1)
        word_tags = tf.maximum(tf.gather(entity_tags, order, batch_dims=1), 0)
        word_logits = tf.gather(tag_logits, order, batch_dims=1)
        log_likelihood, _ = crf_log_likelihood(word_logits, word_tags, lengths, transitions)
        words = tf.cast(tf.reduce_sum(lengths), log_likelihood.dtype)
        return -tf.reduce_sum(log_likelihood) / tf.maximum(words, 1.0)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        tf.where(is_tagged, entity_tags, 0), tag_logits
    )
    weights = tf.cast(is_tagged, losses.dtype)
    return tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


def _figures(epoch: int, totals: np.ndarray, with_intents: bool) -> Dict[str, str]:
    """The progress bar's figures for the epoch so far: loss, intent and tag accuracy."""
    loss_sum, seen, intents_right, tagged, tags_right = totals
    figures = {"epoch": str(epoch + 1), "loss": f"{loss_sum / seen:.3f}"}
    if with_intents:
        figures["intent_acc"] = f"{intents_right / seen:.3f}"
    if tagged:
        figures["tag_acc"] = f"{tags_right / tagged:.3f}"
    return figures


class NetworkTrainer:
    """Trains a built `IntentNetwork` on batches padded to their own length bucket."""

    def __init__(self, network: IntentNetwork, max_seq_len: int) -> None:
        """Takes the network, its weights built (`IntentNetwork.build_for_any_length`)."""
        self.max_seq_len = max_seq_len
        self.network = network

    def train(
        self,
        token_id_lists: Sequence[Sequence[int]],
        labels: Sequence[int],
        entity_tag_lists: Sequence[Optional[Sequence[int]]],
        *,
        intent_loss_weight: float,
        entity_loss_weight: float,
        epochs: float,
        batch_size: int,
        learning_rate: float,
        label_smoothing: float,
        seed: int,
        show_progress: bool,
    ) -> None:
        """Fine-tunes the network's trainable weights with Adam, the rate falling linearly to 0,
        for `epochs` passes over the examples (a fractional last pass is its share of batches).

        The loss is `intent_loss_weight` times the intent loss plus `entity_loss_weight` times
        the mean tagging loss over the positions `entity_tag_lists` tag (UNTAGGED elsewhere);
        a None tag list leaves its example untagged. The progress bar moves with every batch.
        """
        rng = np.random.default_rng(seed)
        labels = np.asarray(labels, dtype=np.int32)
        steps_per_epoch = len(length_batches(token_id_lists, batch_size, self.max_seq_len))
        total_steps = max(1, math.ceil(epochs * steps_per_epoch))
        # The legacy Adam makes the same update in one fused kernel per weight, the new one in a
        # dozen small operations (docs/speed.md).
        optimizer = tf.keras.optimizers.legacy.Adam(
            tf.keras.optimizers.schedules.PolynomialDecay(
                learning_rate, decay_steps=total_steps, end_learning_rate=0.0
            )
        )
        # A tf.function whose first call creates variables (here Adam's slots) is traced twice;
        # made beforehand (a private method of TensorFlow 2.12's legacy optimizer), once.
        optimizer._create_all_weights(self.network.trainable_variables)
        # One traced step for every length: one per length bucket took seconds each to trace.
        train_step = self._train_step(
            optimizer, label_smoothing, intent_loss_weight, entity_loss_weight
        )
        progress = tqdm(
            total=total_steps, desc="Training", unit="batch", disable=not show_progress
        )
        for epoch in range(math.ceil(total_steps / steps_per_epoch)):
            # loss × messages, messages, intents right, tagged words, tags right
            totals = np.zeros(5)
            batches = length_batches(token_id_lists, batch_size, self.max_seq_len, rng)
            batches = batches[: total_steps - epoch * steps_per_epoch]
            for step, (length, rows) in enumerate(batches, start=1):
                batch = pad([token_id_lists[row] for row in rows], length)
                tags = pad([entity_tag_lists[row] or [] for row in rows], length, UNTAGGED)
                loss, *counts = train_step(batch, labels[rows], tags)
                totals += [float(loss) * len(rows), len(rows), *map(int, counts)]
                progress.update()
                if step % PROGRESS_EVERY == 0 or step == len(batches):
                    progress.set_postfix(_figures(epoch, totals, intent_loss_weight > 0))
            logger.debug(", ".join(f"{k} {v}" for k, v in _figures(epoch, totals, True).items()))
        progress.close()

    def _train_step(
        self,
        optimizer: tf.keras.optimizers.legacy.Optimizer,
        label_smoothing: float,
        intent_loss_weight: float,
        entity_loss_weight: float,
    ) -> Callable:
        network = self.network
        # The sparse loss has no label smoothing in TensorFlow 2.12, hence the one-hot labels.
        loss_function = tf.keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=label_smoothing
        )

        # No autograph: the step and the layers it calls branch only on Python values, and
        # converting their source took seconds of every training.
        @tf.function(
            autograph=False,
            input_signature=[
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([None, None], tf.int32),
            ]
        )
        def train_step(token_ids: tf.Tensor, labels: tf.Tensor, entity_tags: tf.Tensor):
            with tf.GradientTape() as tape:
                logits, tag_logits, _ = network.intent_and_entity_tag_logits(token_ids, True)
                loss = intent_loss_weight * loss_function(
                    tf.one_hot(labels, tf.shape(logits)[-1]), logits
                )
                if tag_logits is not None and entity_loss_weight > 0:
                    loss += entity_loss_weight * _entity_tag_loss(
                        entity_tags, tag_logits, network.entity_transitions
                    )
            gradients = tape.gradient(loss, network.trainable_variables)
            optimizer.apply_gradients(
                (gradient, variable)
                for gradient, variable in zip(gradients, network.trainable_variables)
                if gradient is not None  # the tagging head's, when entity_loss_weight is 0
            )
            predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
            is_tagged = tf.not_equal(entity_tags, UNTAGGED)
            tags_right = 0
            if tag_logits is not None:
                predicted_tags = tf.argmax(tag_logits, axis=-1, output_type=tf.int32)
                tags_right = tf.reduce_sum(
                    tf.cast(is_tagged & tf.equal(predicted_tags, entity_tags), tf.int32)
                )
            return (
                loss,
                tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.int32)),
                tf.reduce_sum(tf.cast(is_tagged, tf.int32)),
                tags_right,
            )

        return train_step
