"""The trained network written as an ONNX graph for ONNX Runtime, straight from its weights,
fp32 or with int8 weights.

The network is a fixed architecture, so its graph is built here operator by operator with
the fused operators of ONNX Runtime's own domain that its CPU provider runs fastest
(`Attention`, `SkipLayerNormalization`, `FastGelu`): no tracing, no converter. Weights are
named as bert-for-tf2 names them below its layer (`encoder/layer_0/intermediate/kernel`),
and the heads `dense`, `logits` and `entity_tag_logits`. Each is read when the graph takes it
in (a TensorFlow variable is copied then), so a copy of one weight at a time is held.

With reference weights, the model also runs the encoder as it was pretrained (all its layers,
its nodes under `reference/`) beside the fine-tuned one, and gives that encoder's mean-pooled
sentence vector: what in_scope.py measures a message's likeness to the training examples with.
The word embedding table, which training keeps as pretrained by default, is then stored once,
and the layers training kept as pretrained (`shared_layers`) are computed once for both.

int8 quantises the encoder's weights here, symmetrically with one scale per output column
(the word embeddings: per hidden dimension), and each product's input at run time
(`DynamicQuantizeMatMul`, `QAttention`), as ONNX Runtime's dynamic quantizer would, without
its copies of the whole model. The heads stay float: they are small, and give the
probabilities.
"""

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Set, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# int8: dynamically quantised weights (quarter-size file, about twice as fast on a CPU);
# fp32: the network's own weights.
PRECISIONS = ("int8", "fp32")
# The first opset with LayerNormalization; version 1 of ONNX Runtime's operators.
OPSET = 17
MICROSOFT = "com.microsoft"
# BERT's, and params_flow's LayerNormalization's, which bert-for-tf2 uses everywhere.
LAYER_NORM_EPSILON = 1e-12
# The activations bert-for-tf2 implements and the export writes (its "gelu" is the tanh
# approximation, which is what FastGelu computes).
ACTIVATIONS = ("gelu", "relu", "tanh", "linear")
POOLINGS = ("mean", "cls")
# Input and output names of the model.
TOKEN_IDS = "token_ids"
PROBABILITIES = "probabilities"
ENTITY_TAG_PROBABILITIES = "entity_tag_probabilities"
SENTENCE_VECTOR = "sentence_vector"
REFERENCE_VECTOR = "reference_vector"
# Prefix of the pretrained encoder's weights and nodes.
REFERENCE = "reference/"
# The word embedding table: the pretrained encoder's is not stored when it is the network's own.
WORD_TABLE = "embeddings/word_embeddings/embeddings"
# The largest magnitude of a symmetric int8 weight.
INT8_MAX = 127
# Rows of a weight quantised or compared at a time: a float copy of all the word embeddings
# would be 47 MB.
BLOCK_ROWS = 4096


@dataclass
class Architecture:
    """What the weights alone do not say about the network."""

    num_layers: int
    num_heads: int
    activation: str  # one of ACTIVATIONS
    pooling: str  # one of POOLINGS
    layer_norm_eps: float = LAYER_NORM_EPSILON
    # Layers of the pretrained encoder whose mean-pooled vector the model also gives; 0: none.
    reference_layers: int = 0
    # Bottom layers (with the embeddings) that the network kept as pretrained: with reference
    # layers, their states are computed once and both encoders go on from them.
    shared_layers: int = 0
    # The layers (0 the bottom) whose states' mean the tagging head reads; empty: the top.
    entity_layers: Tuple[int, ...] = ()


class _Graph:
    """Nodes and initializers of the graph being written."""

    def __init__(
        self,
        weights: Mapping[str, Any],
        reference: Mapping[str, Any],
        int8: bool,
        layer_norm_eps: float,
    ) -> None:
        self.weights = weights
        self.reference = reference
        self.int8 = int8
        self.layer_norm_eps = layer_norm_eps
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []
        self._names: Set[str] = set()

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.array(value, order="C"), name))
        self._names.add(name)
        return name

    def weight(self, name: str) -> str:
        """A weight of the network, as an initializer of the same name (once, however often
        it is asked for)."""
        return name if name in self._names else self.constant(name, self.array(name))

    def int8_weight(self, name: str, value: Optional[np.ndarray] = None) -> Tuple[str, str]:
        """The int8 weight and its float scales, one per last-axis column (once)."""
        if name in self._names:
            return name, f"{name}/scale"
        value = self.array(name) if value is None else value
        scales = np.maximum(value.max(axis=0), -value.min(axis=0)) / INT8_MAX
        scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
        quantized = np.empty(value.shape, np.int8)
        for rows in _blocks(len(value)):
            scaled = value[rows] / scales
            np.rint(scaled, out=scaled)
            quantized[rows] = np.clip(scaled, -INT8_MAX, INT8_MAX, out=scaled)
        return self.constant(name, quantized), self.constant(f"{name}/scale", scales)

    def array(self, name: str) -> np.ndarray:
        """The weight's value, read now; `reference/` names one of the pretrained encoder."""
        weights = self.weights
        if name.startswith(REFERENCE):
            weights, name = self.reference, name[len(REFERENCE) :]
        if name not in weights:
            raise ValueError(f"the network has no weight {name!r}")
        return np.asarray(weights[name], dtype=np.float32)

    def shares_word_table(self) -> bool:
        """Whether the pretrained encoder's word table is the network's."""
        if WORD_TABLE not in self.reference:
            return False
        theirs, ours = self.array(REFERENCE + WORD_TABLE), self.weights[WORD_TABLE]
        return theirs.shape == tuple(ours.shape) and all(
            np.array_equal(theirs[rows], np.asarray(ours[rows])) for rows in _blocks(len(theirs))
        )

    def op(self, op_type: str, inputs: List[str], output: str, **attributes) -> str:
        domain = attributes.pop("domain", None)
        self.nodes.append(
            helper.make_node(op_type, inputs, [output], name=output, domain=domain, **attributes)
        )
        return output

    def matmul(self, x: str, kernel: str, quantized: bool) -> str:
        """`x · kernel`; with `quantized` and int8, of int8 weights and a quantised `x`."""
        if quantized and self.int8:
            return self.op(
                "DynamicQuantizeMatMul", [x, *self.int8_weight(kernel)], f"{kernel}/matmul",
                domain=MICROSOFT,
            )
        return self.op("MatMul", [x, self.weight(kernel)], f"{kernel}/matmul")

    def dense(self, x: str, layer: str, activation: str = "linear", quantized: bool = False) -> str:
        """`x · kernel + bias`, then the activation."""
        product = self.matmul(x, f"{layer}/kernel", quantized)
        if activation == "gelu":  # FastGelu adds the bias itself
            return self.op(
                "FastGelu", [product, self.weight(f"{layer}/bias")], f"{layer}/gelu",
                domain=MICROSOFT,
            )
        biased = self.op("Add", [product, self.weight(f"{layer}/bias")], f"{layer}/biased")
        if activation == "linear":
            return biased
        return self.op(activation.capitalize(), [biased], f"{layer}/{activation}")

    def skip_layer_norm(self, x: str, skip: str, layer: str) -> str:
        """Layer normalisation of `x · kernel + bias + skip`."""
        return self.op(
            "SkipLayerNormalization",
            [
                self.matmul(x, f"{layer}/dense/kernel", quantized=True),
                skip,
                self.weight(f"{layer}/LayerNorm/gamma"),
                self.weight(f"{layer}/LayerNorm/beta"),
                self.weight(f"{layer}/dense/bias"),
            ],
            f"{layer}/normalized",
            domain=MICROSOFT,
            epsilon=self.layer_norm_eps,
        )

    def attention(self, x: str, mask: str, layer: str, num_heads: int) -> str:
        """Self-attention of `x` with the query, key and value weights side by side."""
        projections = [f"{layer}/attention/self/{p}" for p in ("query", "key", "value")]
        kernel = np.concatenate([self.array(f"{p}/kernel") for p in projections], axis=1)
        bias = self.constant(
            f"{layer}/attention/qkv/bias",
            np.concatenate([self.array(f"{p}/bias") for p in projections]),
        )
        name = f"{layer}/attention/self"
        if not self.int8:
            weights = self.constant(f"{layer}/attention/qkv/kernel", kernel)
            return self.op(
                "Attention", [x, weights, bias, mask], name, domain=MICROSOFT, num_heads=num_heads
            )
        weights, scales = self.int8_weight(f"{layer}/attention/qkv/kernel", kernel)
        quantized = [f"{name}/input", f"{name}/input_scale", f"{name}/input_zero_point"]
        self.nodes.append(
            helper.make_node("DynamicQuantizeLinear", [x], quantized, name=quantized[0])
        )
        return self.op(
            "QAttention",
            [quantized[0], weights, bias, quantized[1], scales, mask, quantized[2]],
            name,
            domain=MICROSOFT,
            num_heads=num_heads,
        )


def _blocks(rows: int) -> List[slice]:
    """Slices of at most BLOCK_ROWS rows, covering `rows`."""
    return [slice(start, start + BLOCK_ROWS) for start in range(0, rows, BLOCK_ROWS)]


def write(
    weights: Mapping[str, Any],
    architecture: Architecture,
    precision: str,
    reference: Optional[Mapping[str, Any]] = None,
) -> bytes:
    """The serialised ONNX model; with `entity_tag_logits` weights, the tag probabilities too.

    `weights` and `reference` (the pretrained encoder's, for `architecture.reference_layers`)
    map names to arrays or to what `np.asarray` reads, such as TensorFlow variables.

    Input `token_ids` `[batch, length]` (int32, 0 is padding); outputs intent probabilities
    `[batch, intents]`, the pooled sentence vectors `[batch, hidden]`, entity tag
    probabilities `[batch, length, tags]` and, with reference layers, the pretrained encoder's
    mean-pooled vectors `[batch, its hidden]`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision is {precision!r}, not one of {', '.join(PRECISIONS)}")
    if architecture.activation not in ACTIVATIONS:
        raise ValueError(f"activation {architecture.activation!r} is not one of {ACTIVATIONS}")
    if architecture.pooling not in POOLINGS:
        raise ValueError(f"pooling {architecture.pooling!r} is not one of {POOLINGS}")
    graph = _Graph(weights, reference or {}, precision == "int8", architecture.layer_norm_eps)
    zero = graph.constant("zero", np.array(0, np.int32))
    is_token = graph.op("Not", [graph.op("Equal", [TOKEN_IDS, zero], "is_padding")], "is_token")
    mask = graph.op("Cast", [is_token], "mask", to=TensorProto.INT32)
    states = _layers(graph, architecture, _embeddings(graph), range(architecture.num_layers), mask)
    hidden = states[-1]
    outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", size])
        for name, size in (
            (PROBABILITIES, weights["logits/kernel"].shape[1]),
            (SENTENCE_VECTOR, weights["dense/kernel"].shape[0]),
        )
    ]
    pooled = _pooled(graph, hidden, architecture.pooling)
    graph.op("Identity", [pooled], SENTENCE_VECTOR)
    intent_logits = graph.dense(graph.dense(pooled, "dense", "tanh"), "logits")
    graph.op("Softmax", [intent_logits], PROBABILITIES, axis=-1)
    if "entity_tag_logits/kernel" in weights:
        tagged = _mean_of(graph, [states[i] for i in architecture.entity_layers or [-1]])
        tag_logits = graph.dense(tagged, "entity_tag_logits")
        graph.op("Softmax", [tag_logits], ENTITY_TAG_PROBABILITIES, axis=-1)
        tags = weights["entity_tag_logits/kernel"].shape[1]
        outputs.append(
            helper.make_tensor_value_info(
                ENTITY_TAG_PROBABILITIES, TensorProto.FLOAT, ["batch", "length", tags]
            )
        )
    if architecture.reference_layers:
        shared = architecture.shared_layers
        start = states[shared - 1] if shared else _embeddings(graph, REFERENCE)
        layers = range(shared, architecture.reference_layers)
        reference = _layers(graph, architecture, start, layers, mask, REFERENCE)[-1]
        graph.op("Identity", [_pooled(graph, reference, "mean", REFERENCE)], REFERENCE_VECTOR)
        size = graph.array(f"{REFERENCE}embeddings/LayerNorm/gamma").shape[0]
        outputs.append(
            helper.make_tensor_value_info(REFERENCE_VECTOR, TensorProto.FLOAT, ["batch", size])
        )
    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "intent_network",
            [helper.make_tensor_value_info(TOKEN_IDS, TensorProto.INT32, ["batch", "length"])],
            outputs,
        ),
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MICROSOFT, 1)],
        producer_name="rasa-bert-intent",
    )
    # Moved in one at a time: make_graph and make_model would each copy all of them.
    graph.initializers.reverse()
    while graph.initializers:
        model.graph.initializer.append(graph.initializers.pop())
    return model.SerializeToString()


def _embeddings(graph: _Graph, prefix: str = "") -> str:
    """BERT's embeddings of the weights named with `prefix`: `[batch, length, hidden]`."""
    # Every message is segment 0: its token type embedding is one row, added to each position.
    position_table = (
        graph.array(f"{prefix}embeddings/position_embeddings/embeddings")
        + graph.array(f"{prefix}embeddings/token_type_embeddings/embeddings")[0]
    )
    length = graph.op("Shape", [TOKEN_IDS], f"{prefix}length", start=1, end=2)
    positions = graph.op(
        "Slice",
        [
            graph.constant(f"{prefix}embeddings/positions", position_table),
            graph.constant(f"{prefix}embeddings/first", np.array([0], np.int64)),
            length,
            graph.constant(f"{prefix}embeddings/axis", np.array([0], np.int64)),
        ],
        f"{prefix}embeddings/position_rows",
    )
    word_table = WORD_TABLE if not prefix or graph.shares_word_table() else prefix + WORD_TABLE
    if graph.int8:
        table, scales = graph.int8_weight(word_table)
        rows = graph.op("Gather", [table, TOKEN_IDS], f"{prefix}embeddings/int8_words")
        words = graph.op("DequantizeLinear", [rows, scales], f"{prefix}embeddings/words", axis=-1)
    else:
        words = graph.op(
            "Gather", [graph.weight(word_table), TOKEN_IDS], f"{prefix}embeddings/words"
        )
    summed = graph.op("Add", [words, positions], f"{prefix}embeddings/sum")
    return graph.op(
        "LayerNormalization",
        [
            summed,
            graph.weight(f"{prefix}embeddings/LayerNorm/gamma"),
            graph.weight(f"{prefix}embeddings/LayerNorm/beta"),
        ],
        f"{prefix}embeddings/normalized",
        axis=-1,
        epsilon=graph.layer_norm_eps,
    )


def _layers(
    graph: _Graph, architecture: Architecture, x: str, layers: range, mask: str, prefix: str = ""
) -> List[str]:
    """The transformer layers `layers` of the weights named with `prefix`, from the states `x`:
    each layer's output states `[batch, length, hidden]`, in order."""
    states = []
    for index in layers:
        layer = f"{prefix}encoder/layer_{index}"
        # mask [batch, length]: 1 attends, 0 is padding, scored -10000 as in bert-for-tf2.
        attended = graph.attention(x, mask, layer, architecture.num_heads)
        x = graph.skip_layer_norm(attended, x, f"{layer}/attention/output")
        inner = graph.dense(x, f"{layer}/intermediate", architecture.activation, quantized=True)
        x = graph.skip_layer_norm(inner, x, f"{layer}/output")
        states.append(x)
    return states


def _mean_of(graph: _Graph, states: List[str]) -> str:
    """The mean of several layers' states (one layer's: its own)."""
    if len(states) == 1:
        return states[0]
    summed = states[0]
    for index, state in enumerate(states[1:], start=1):
        summed = graph.op("Add", [summed, state], f"entity_layers/sum_{index}")
    share = graph.constant("entity_layers/share", np.array(1 / len(states), np.float32))
    return graph.op("Mul", [summed, share], "entity_layers/mean")


def _pooled(graph: _Graph, hidden: str, pooling: str, prefix: str = "") -> str:
    """The sentence vector: the mean of the tokens' hidden states, or the first's ([CLS])."""
    if pooling == "cls":
        first = graph.constant(f"{prefix}pooling/first", np.array(0, np.int64))
        return graph.op("Gather", [hidden, first], f"{prefix}pooled", axis=1)
    axis = graph.constant(f"{prefix}pooling/axis", np.array([1], np.int64))
    is_token = graph.op("Cast", ["is_token"], f"{prefix}pooling/is_token", to=TensorProto.FLOAT)
    # [batch, 1, length] weights, then their [batch, 1, hidden] sum of the hidden states
    weights = graph.op("Unsqueeze", [is_token, axis], f"{prefix}pooling/weights")
    summed = graph.op("MatMul", [weights, hidden], f"{prefix}pooling/matmul")
    count = graph.op("ReduceSum", [is_token, axis], f"{prefix}pooling/count", keepdims=1)
    return graph.op(
        "Div",
        [graph.op("Squeeze", [summed, axis], f"{prefix}pooling/sum"), count],
        f"{prefix}pooled",
    )
