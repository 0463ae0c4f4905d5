"""The Keras network: a fine-tuned BERT encoder with the article's intent head and a tagging head."""

import logging
import math
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from rasa.utils.tensorflow.crf import crf_log_likelihood
from tqdm import tqdm

from rasa_bert_intent import onnx_export
from rasa_bert_intent.encoder import bert_layer_params
from rasa_bert_intent.quiet import quiet_bert_import
from rasa_bert_intent.tokenization import PAD_ID, UNTAGGED, length_batches, pad

with quiet_bert_import():
    from bert import BertModelLayer
    from params_flow.normalization import LayerNormalization

logger = logging.getLogger(__name__)

BERT_LAYER_NAME = "bert"
# Batches between two updates of the training progress bar's figures.
PROGRESS_EVERY = 10
# With layers kept as pretrained, the tagging head reads the mean of the top layer's states and
# those of the layer this many below it, where that layer is trained: the top layers of a
# sentence encoder serve the sentence vector more than each word (SNIPS dev at 10 per intent,
# span F1 51.1 against 47.5 on the top alone; docs/choosing-the-defaults.md, "Few examples").
ENTITY_LAYER_BELOW_TOP = 2
# The prototype head's logits: each intent's row is the unit direction from the centre of all
# intents' means to its own, times this over the examples' mean distance from the centre. On
# HWU64 dev splits at 10 per intent the softmax was 85.2% right with unit directions, 82.3% with
# the directions themselves (logits about three times as sharp) and a nearest-mean bias.
PROTOTYPE_SCALE = 10.0


class IntentNetwork(tf.keras.Model):
    """BERT, a pooled sentence vector, dropout, a dense tanh layer, dropout, intent logits.

    With `num_entity_tags`, a second head tags each word piece (the first piece of each word,
    in training) with an entity tag, as the joint intent and slot models of the SNIPS
    literature do; with `entity_crf` as a linear-chain CRF over the words, with learned
    tag-to-tag transition scores, as DIET does. The embeddings and the bottom `frozen_layers`
    layers keep their pretrained weights and run without dropout: the pretrained encoder's own
    function, which the export computes once for both.
    """

    def __init__(
        self,
        bert_config: Dict,
        num_intents: int,
        dropout: float,
        pooling: str,
        num_entity_tags: int = 0,
        train_word_embeddings: bool = True,
        entity_crf: bool = False,
        frozen_layers: int = 0,
    ) -> None:
        """Creates the layers; `build_for_any_length` creates their weights."""
        super().__init__(name="intent_network")
        self.pooling = pooling
        self.frozen_layers = frozen_layers
        self.bert = BertModelLayer.from_params(bert_layer_params(bert_config), name=BERT_LAYER_NAME)
        self.layer_norm_eps = float(
            bert_config.get("layer_norm_eps", onnx_export.LAYER_NORM_EPSILON)
        )
        self.train_word_embeddings = train_word_embeddings
        hidden_size = int(bert_config["hidden_size"])
        self.pooled_dropout = tf.keras.layers.Dropout(dropout, name="pooled_dropout")
        self.dense = tf.keras.layers.Dense(hidden_size, activation="tanh", name="dense")
        self.dense_dropout = tf.keras.layers.Dropout(dropout, name="dense_dropout")
        self.logits = tf.keras.layers.Dense(num_intents, name="logits")
        self.entity_tag_dropout = tf.keras.layers.Dropout(dropout, name="entity_tag_dropout")
        self.entity_tag_logits = (
            tf.keras.layers.Dense(num_entity_tags, name="entity_tag_logits")
            if num_entity_tags
            else None
        )
        # transitions[previous tag, tag], added to the tag logits of consecutive words.
        self.entity_transitions = (
            self.add_weight(
                "entity_transitions",
                shape=(num_entity_tags, num_entity_tags),
                initializer="zeros",
            )
            if num_entity_tags and entity_crf
            else None
        )

    def call(self, token_ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Intent logits for a `[batch, length]` batch of token ids."""
        return self.intent_and_entity_tag_logits(token_ids, training)[0]

    def intent_and_entity_tag_logits(
        self, token_ids: tf.Tensor, training: bool
    ) -> Tuple[tf.Tensor, Optional[tf.Tensor], tf.Tensor]:
        """Intent logits `[batch, intents]`, with a tagging head the tag logits
        `[batch, length, tags]` (else None), and the pooled sentence vectors `[batch, hidden]`."""
        is_token = tf.not_equal(token_ids, PAD_ID)
        layers = self.bert.encoders_layer.encoder_layers
        frozen = self.frozen_layers > 0
        hidden = self._embeddings(token_ids, training and not frozen)
        states = []
        for index, layer in enumerate(layers):
            if index == self.frozen_layers and frozen:
                hidden = tf.stop_gradient(hidden)
            hidden = layer(hidden, mask=is_token, training=training and index >= self.frozen_layers)
            states.append(hidden)
        entity_tag_logits = None
        if self.entity_tag_logits is not None:
            tagged = tf.reduce_mean(tf.stack([states[i] for i in self.entity_layers()]), axis=0)
            entity_tag_logits = self.entity_tag_logits(
                self.entity_tag_dropout(tagged, training=training)
            )
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = tf.cast(is_token, hidden.dtype)[..., None]
            pooled = tf.reduce_sum(hidden * weights, axis=1) / tf.reduce_sum(weights, axis=1)
        dense = self.dense(self.pooled_dropout(pooled, training=training))
        logits = self.logits(self.dense_dropout(dense, training=training))
        return logits, entity_tag_logits, pooled

    def _embeddings(self, token_ids: tf.Tensor, training: bool) -> tf.Tensor:
        """What bert-for-tf2's embeddings layer computes, with the length read at run time.

        The layer itself reads the length from the static shape, which the export leaves
        open so that one model serves every length.
        """
        layer = self.bert.embeddings_layer
        embeddings = layer.word_embeddings_layer(token_ids)
        embeddings += layer.token_type_embeddings_layer(tf.zeros_like(token_ids))
        positions = layer.position_embeddings_layer.embedding_table[: tf.shape(token_ids)[1]]
        embeddings += positions[None]
        return layer.dropout_layer(layer.layer_norm_layer(embeddings), training=training)

    def build_for_any_length(self) -> None:
        """Creates the weights, then lifts the input shape each sublayer recorded.

        bert-for-tf2 layers keep the shape of their first input as `input_spec` and refuse
        any other sequence length afterwards.
        """
        token_ids = tf.zeros((1, 8), dtype=tf.int32)
        self.bert([token_ids, token_ids])  # creates the encoder's weights under its own name
        for layer in self.bert.submodules:
            if isinstance(layer, LayerNormalization):
                # bert-for-tf2 takes no epsilon: each layer reads its own when it is called.
                layer.params.epsilon = self.layer_norm_eps
        self.bert.embeddings_layer.word_embeddings_layer.trainable = self.train_word_embeddings
        if self.frozen_layers:
            self.bert.embeddings_layer.trainable = False
            for layer in self.bert.encoders_layer.encoder_layers[: self.frozen_layers]:
                layer.trainable = False
        self.intent_and_entity_tag_logits(token_ids, training=False)
        for layer in self.submodules:
            if isinstance(layer, tf.keras.layers.Layer):
                layer.input_spec = None

    def entity_layers(self) -> List[int]:
        """The layers (0 the bottom) whose states' mean the tagging head reads."""
        top = self.bert.params.num_layers - 1
        below = top - ENTITY_LAYER_BELOW_TOP
        blend = self.frozen_layers and ENTITY_LAYER_BELOW_TOP and below >= self.frozen_layers
        return [below, top] if blend else [top]

    def start_heads_from_prototypes(
        self, token_id_lists: Sequence[Sequence[int]], labels: Sequence[int], batch_size: int
    ) -> None:
        """Starts the intent head from the intents' prototypes, the means of their examples'
        sentence vectors.

        The dense layer starts as the identity (before its tanh); each intent's logit row as the
        unit direction from the centre of all intents' means to its own, scaled by
        PROTOTYPE_SCALE over the examples' mean distance from that centre; no bias. Training then
        refines a classifier that already works instead of first undoing a random head.
        """
        labels = np.asarray(labels)
        vectors = np.zeros((len(labels), self.dense.kernel.shape[0]), np.float64)
        longest = max(map(len, token_id_lists))
        for length, rows in length_batches(token_id_lists, batch_size, longest):
            batch = pad([token_id_lists[row] for row in rows], length)
            vectors[rows] = self.intent_and_entity_tag_logits(batch, False)[2].numpy()
        vectors = np.tanh(vectors)
        intents = self.logits.kernel.shape[1]
        means = np.stack([
            vectors[labels == intent].mean(axis=0) if np.any(labels == intent)
            else np.zeros(vectors.shape[1])
            for intent in range(intents)
        ])
        centre = means.mean(axis=0)
        spread = np.linalg.norm(vectors - centre, axis=1).mean()
        scale = PROTOTYPE_SCALE / max(spread, 1e-6)
        directions = means - centre
        directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-9)
        self.set_named_weights({
            "dense/kernel": np.eye(self.dense.kernel.shape[0], dtype=np.float32),
            "dense/bias": np.zeros(self.dense.kernel.shape[1], np.float32),
            "logits/kernel": (scale * directions.T).astype(np.float32),
            "logits/bias": np.zeros(intents, np.float32),
        })

    def heads(self) -> Dict[str, tf.keras.layers.Dense]:
        """The dense layers above the encoder, by name."""
        heads = {"dense": self.dense, "logits": self.logits}
        if self.entity_tag_logits is not None:
            heads["entity_tag_logits"] = self.entity_tag_logits
        return heads

    def named_weights(self) -> Dict[str, tf.Variable]:
        """Every weight, under names that Keras' layer counters do not change: the encoder's
        as `encoder_weight_names`, the heads' as `logits/kernel`, and `entity_transitions`."""
        weights = dict(zip(self.encoder_weight_names(), self.bert.weights))
        for name, layer in self.heads().items():
            weights[f"{name}/kernel"] = layer.kernel
            weights[f"{name}/bias"] = layer.bias
        if self.entity_transitions is not None:
            weights["entity_transitions"] = self.entity_transitions
        return weights

    def trainable_names(self) -> List[str]:
        """The `named_weights` names of the weights that training changes."""
        trainable = {variable.ref() for variable in self.trainable_variables}
        return [name for name, weight in self.named_weights().items() if weight.ref() in trainable]

    def trained_weights(self, dtype: np.dtype = np.float32) -> Dict[str, np.ndarray]:
        """The values of the weights that training changes, by `named_weights`' names, each
        converted to `dtype` as it is read."""
        weights = self.named_weights()
        return {name: weights[name].numpy().astype(dtype) for name in self.trainable_names()}

    def set_named_weights(self, values: Mapping[str, np.ndarray]) -> None:
        """Sets weights by `named_weights`' names; ValueError names one unknown or misfit."""
        weights = self.named_weights()
        for name, value in values.items():
            if name not in weights:
                raise ValueError(f"the network has no weight '{name}'")
            if tuple(weights[name].shape) != value.shape:
                raise ValueError(
                    f"weight '{name}' has shape {value.shape}, the network needs "
                    f"{tuple(weights[name].shape)}"
                )
        tf.keras.backend.batch_set_value(
            [(weights[name], value) for name, value in values.items()]
        )

    def encoder_weight_names(self) -> List[str]:
        """The BERT layer's weight names below it, such as `encoder/layer_0/intermediate/kernel`."""
        return [_encoder_weight_name(weight) for weight in self.bert.weights]

    def set_encoder_weights(self, encoder_weights: Mapping[str, np.ndarray]) -> None:
        """Loads pretrained weights into the BERT layer; ValueError names one missing or misfit."""
        names = self.encoder_weight_names()
        missing = sorted(set(names) - set(encoder_weights))
        if missing:
            raise ValueError(f"missing weights: {', '.join(missing[:5])}")
        self.set_named_weights({name: encoder_weights[name] for name in names})


def _encoder_weight_name(weight: tf.Variable) -> str:
    """The name below the BERT layer, whatever scopes Keras' layer counters put above it."""
    name = weight.name.split(":")[0]
    return name.split(f"{BERT_LAYER_NAME}/", 1)[1]


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


class IntentModel:
    """Trains an `IntentNetwork` on batches padded to their own length bucket."""

    def __init__(self, network: IntentNetwork, max_seq_len: int) -> None:
        """Builds the network's weights, freshly initialised."""
        self.max_seq_len = max_seq_len
        self.network = network
        self.network.build_for_any_length()

    def train(
        self,
        token_id_lists: Sequence[Sequence[int]],
        labels: Sequence[int],
        entity_tag_lists: Sequence[Optional[Sequence[int]]],
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
        # dozen small operations: a step of 8 messages took 27% less time with it on 2 cores
        # (docs/speed.md). TensorFlow 2.12, which Rasa 3.6 pins, has both.
        optimizer = tf.keras.optimizers.legacy.Adam(
            tf.keras.optimizers.schedules.PolynomialDecay(
                learning_rate, decay_steps=total_steps, end_learning_rate=0.0
            )
        )
        # A tf.function whose first call creates variables (here Adam's slots) is traced twice;
        # made beforehand (a private method of the legacy optimizer of TensorFlow 2.12, which
        # Rasa pins), they leave one trace: 18 examples trained in about 15 s instead of 19.
        optimizer._create_all_weights(self.network.trainable_variables)
        # One traced step for every length: tracing one per length bucket took about 4 s each.
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

    def to_onnx(
        self, precision: str, reference: Optional[Mapping[str, np.ndarray]] = None
    ) -> bytes:
        """The network as an ONNX model for messages of any length, in batches of any size.

        Its outputs, from one pass of the encoder: intent probabilities `[batch, intents]`,
        the pooled sentence vectors `[batch, hidden]` and, with a tagging head, entity tag
        probabilities `[batch, length, tags]`. `precision` is one of onnx_export.PRECISIONS.
        With `reference`, the pretrained encoder's weights (`encoder_weight_names` of a network
        of all its layers), the model also gives that encoder's mean-pooled vectors.
        """
        network = self.network
        # The variables themselves: the export reads each when it writes it, so that a copy of
        # one weight at a time is held, not of all.
        weights = network.named_weights()
        weights.pop("entity_transitions", None)  # decoding's, in the metadata
        reference_layers = sum(name.endswith("/intermediate/kernel") for name in reference or {})
        params = network.bert.params
        architecture = onnx_export.Architecture(
            num_layers=params.num_layers,
            num_heads=params.num_heads,
            activation=params.intermediate_activation,
            pooling=network.pooling,
            layer_norm_eps=network.layer_norm_eps,
            reference_layers=reference_layers,
            shared_layers=network.frozen_layers if reference_layers else 0,
            entity_layers=tuple(network.entity_layers()),
        )
        return onnx_export.write(weights, architecture, precision, reference)
