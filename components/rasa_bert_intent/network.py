"""The Keras network: a BERT encoder with the article's intent head and a tagging head, its
weights by stable names, and its export to ONNX (onnx_export.py)."""

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from rasa_bert_intent import onnx_export
from rasa_bert_intent.batching import PAD_ID, length_batches, pad
from rasa_bert_intent.pretrained.architectures import BERT_LAYER_NORM_EPS
from rasa_bert_intent.pretrained.encoder import bert_layer_params
from rasa_bert_intent.quiet import quiet_bert_import

with quiet_bert_import():
    from bert import BertModelLayer
    from params_flow.normalization import LayerNormalization

BERT_LAYER_NAME = "bert"
# The sentence vector: the mean over the real tokens, or the [CLS] token's.
POOLINGS = ("mean", "cls")
# With layers kept as pretrained, the tagging head reads the mean of the top layer's states and
# those of the layer this many below it (docs/choosing-the-defaults.md, "Few examples").
ENTITY_LAYER_BELOW_TOP = 2
# The prototype head's logit rows: unit directions times this over the examples' mean distance
# from the centre (docs/choosing-the-defaults.md, "Few examples").
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
        # Bottom layers that training leaves as they are for now (`hold`).
        self.held_layers = 0
        self.bert = BertModelLayer.from_params(bert_layer_params(bert_config), name=BERT_LAYER_NAME)
        self.layer_norm_eps = float(
            bert_config.get("layer_norm_eps", BERT_LAYER_NORM_EPS)
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
        unchanged = max(self.frozen_layers, self.held_layers)
        hidden = self._embeddings(token_ids, training and not frozen)
        states = []
        for index, layer in enumerate(layers):
            if index == unchanged and unchanged:
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
        self.hold(0)
        self.intent_and_entity_tag_logits(token_ids, training=False)
        for layer in self.submodules:
            if isinstance(layer, tf.keras.layers.Layer):
                layer.input_spec = None

    def hold(self, layers: int) -> None:
        """Makes training leave the embeddings and the bottom `layers` layers as they are, as
        well as those kept as pretrained (`frozen_layers`); 0 holds those alone."""
        self.held_layers = layers
        unchanged = max(self.frozen_layers, layers)
        embeddings = self.bert.embeddings_layer
        embeddings.trainable = not unchanged
        embeddings.word_embeddings_layer.trainable = self.train_word_embeddings and not unchanged
        for index, layer in enumerate(self.bert.encoders_layer.encoder_layers):
            layer.trainable = index >= unchanged

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
        # The variables themselves: the export reads each when it writes it, so that a copy of
        # one weight at a time is held, not of all.
        weights = self.named_weights()
        weights.pop("entity_transitions", None)  # decoding's, in the metadata
        reference_layers = sum(name.endswith("/intermediate/kernel") for name in reference or {})
        params = self.bert.params
        spec = onnx_export.GraphSpec(
            num_layers=params.num_layers,
            num_heads=params.num_heads,
            activation=params.intermediate_activation,
            pooling=self.pooling,
            layer_norm_eps=self.layer_norm_eps,
            reference_layers=reference_layers,
            shared_layers=self.frozen_layers if reference_layers else 0,
            entity_layers=tuple(self.entity_layers()),
        )
        return onnx_export.write(weights, spec, precision, reference)


def _encoder_weight_name(weight: tf.Variable) -> str:
    """The name below the BERT layer, whatever scopes Keras' layer counters put above it."""
    name = weight.name.split(":")[0]
    return name.split(f"{BERT_LAYER_NAME}/", 1)[1]
