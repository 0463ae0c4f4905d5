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

int8 weights are quantised as onnx_graph.py says; the heads stay float: they are small, and
give the probabilities.
"""

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper

from rasa_bert_intent.onnx_graph import MICROSOFT, REFERENCE, WORD_TABLE, Graph
from rasa_bert_intent.pretrained.architectures import BERT_LAYER_NORM_EPS

# int8: dynamically quantised weights (quarter-size file, about twice as fast on a CPU);
# fp32: the network's own weights.
PRECISIONS = ("int8", "fp32")
# The first opset with LayerNormalization; version 1 of ONNX Runtime's operators.
OPSET = 17
# The model's own description (ONNX metadata properties): its GraphSpec, precision, the names
# of the initializers that hold the pretrained encoder's weights, and whether the network's word
# table is among them (onnx_kept.py takes them out and puts them back).
SPEC, PRECISION = "rasa_bert_intent.spec", "rasa_bert_intent.precision"
PRETRAINED_NAMES = "rasa_bert_intent.pretrained_initializers"
PRETRAINED_WORD_TABLE = "rasa_bert_intent.pretrained_word_table"
# Input and output names of the model.
TOKEN_IDS = "token_ids"
PROBABILITIES = "probabilities"
ENTITY_TAG_PROBABILITIES = "entity_tag_probabilities"
SENTENCE_VECTOR = "sentence_vector"
REFERENCE_VECTOR = "reference_vector"


@dataclass
class GraphSpec:
    """What the weights alone do not say about the network."""

    num_layers: int
    num_heads: int
    activation: str  # one of architectures.ACTIVATIONS
    pooling: str  # one of network.POOLINGS
    layer_norm_eps: float = BERT_LAYER_NORM_EPS
    # Layers of the pretrained encoder whose mean-pooled vector the model also gives; 0: none.
    reference_layers: int = 0
    # Bottom layers (with the embeddings) that the network kept as pretrained: with reference
    # layers, their states are computed once and both encoders go on from them.
    shared_layers: int = 0
    # The layers (0 the bottom) whose states' mean the tagging head reads; empty: the top.
    entity_layers: Tuple[int, ...] = ()


def write(
    weights: Mapping[str, Any],
    spec: GraphSpec,
    precision: str,
    reference: Optional[Mapping[str, Any]] = None,
) -> bytes:
    """The serialised ONNX model; with `entity_tag_logits` weights, the tag probabilities too.

    `weights` and `reference` (the pretrained encoder's, for `spec.reference_layers`)
    map names to arrays or to what `np.asarray` reads, such as TensorFlow variables.

    Input `token_ids` `[batch, length]` (int32, 0 is padding); outputs intent probabilities
    `[batch, intents]`, the pooled sentence vectors `[batch, hidden]`, entity tag
    probabilities `[batch, length, tags]` and, with reference layers, the pretrained encoder's
    mean-pooled vectors `[batch, its hidden]`.
    """
    graph = Graph(weights, reference or {}, precision == "int8", spec.layer_norm_eps)
    zero = graph.constant("zero", np.array(0, np.int32))
    is_token = graph.op("Not", [graph.op("Equal", [TOKEN_IDS, zero], "is_padding")], "is_token")
    mask = graph.op("Cast", [is_token], "mask", to=TensorProto.INT32)
    states = _layers(graph, spec, _embeddings(graph), range(spec.num_layers), mask)
    pooled = _pooled(graph, states[-1], spec.pooling)
    graph.op("Identity", [pooled], SENTENCE_VECTOR)
    intent_logits = graph.dense(graph.dense(pooled, "dense", "tanh"), "logits")
    graph.op("Softmax", [intent_logits], PROBABILITIES, axis=-1)
    outputs = [
        _output(PROBABILITIES, "batch", weights["logits/kernel"].shape[1]),
        _output(SENTENCE_VECTOR, "batch", weights["dense/kernel"].shape[0]),
    ]
    if "entity_tag_logits/kernel" in weights:
        tagged = _mean_of(graph, [states[i] for i in spec.entity_layers or [-1]])
        tag_logits = graph.dense(tagged, "entity_tag_logits")
        graph.op("Softmax", [tag_logits], ENTITY_TAG_PROBABILITIES, axis=-1)
        tags = weights["entity_tag_logits/kernel"].shape[1]
        outputs.append(_output(ENTITY_TAG_PROBABILITIES, "batch", "length", tags))
    word_table_pretrained = False
    if spec.reference_layers:
        word_table_pretrained = graph.shares_word_table()
        size = _reference_encoder(graph, spec, states[: spec.shared_layers], mask)
        outputs.append(_output(REFERENCE_VECTOR, "batch", size))
    pretrained = [
        i.name
        for i in graph.initializers
        if i.name.startswith(REFERENCE) or (word_table_pretrained and _is_word_table(i.name))
    ]
    described = {
        SPEC: json.dumps(dataclasses.asdict(spec)),
        PRECISION: precision,
        PRETRAINED_WORD_TABLE: json.dumps(word_table_pretrained),
        PRETRAINED_NAMES: json.dumps(pretrained),
    }
    return _serialised(graph, outputs, described)


def _reference_encoder(graph: Graph, spec: GraphSpec, shared_states: List[str], mask: str) -> int:
    """The pretrained encoder's mean-pooled vector, from the states of the layers the network
    shares with it (none: from its own embeddings); returns the vector's size."""
    shared = spec.shared_layers
    start = shared_states[-1] if shared else _embeddings(graph, REFERENCE)
    layers = range(shared, spec.reference_layers)
    reference = _layers(graph, spec, start, layers, mask, REFERENCE)[-1]
    graph.op("Identity", [_pooled(graph, reference, "mean", REFERENCE)], REFERENCE_VECTOR)
    return graph.array(f"{REFERENCE}embeddings/LayerNorm/gamma").shape[0]


def _is_word_table(name: str) -> bool:
    return name in (WORD_TABLE, f"{WORD_TABLE}/scale")


def pretrained_initializers(
    reference: Mapping[str, Any], spec: GraphSpec, precision: str, word_table: bool
) -> List[onnx.TensorProto]:
    """The initializers of `write`'s model that hold the pretrained encoder's weights, in its
    order: the network's word table where it is the pretrained one, and the reference layers."""
    network = {WORD_TABLE: reference[WORD_TABLE]} if word_table else {}
    graph = Graph(network, reference, precision == "int8", spec.layer_norm_eps)
    if word_table:
        _word_table(graph, WORD_TABLE)
    _reference_encoder(graph, spec, [TOKEN_IDS] * spec.shared_layers, TOKEN_IDS)
    return [i for i in graph.initializers if i.name.startswith(REFERENCE) or _is_word_table(i.name)]


def _output(name: str, *shape: Any) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _serialised(
    graph: Graph, outputs: List[onnx.ValueInfoProto], described: Dict[str, str]
) -> bytes:
    """The model of the graph's nodes and initializers, described, serialised."""
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
    helper.set_model_props(model, described)
    # Moved in one at a time: make_graph and make_model would each copy all of them.
    graph.initializers.reverse()
    while graph.initializers:
        model.graph.initializer.append(graph.initializers.pop())
    return model.SerializeToString()


def _embeddings(graph: Graph, prefix: str = "") -> str:
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
    table = _word_table(graph, word_table)
    if graph.int8:
        rows = graph.op("Gather", [table[0], TOKEN_IDS], f"{prefix}embeddings/int8_words")
        words = graph.op("DequantizeLinear", [rows, table[1]], f"{prefix}embeddings/words", axis=-1)
    else:
        words = graph.op("Gather", [table[0], TOKEN_IDS], f"{prefix}embeddings/words")
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


def _word_table(graph: Graph, name: str) -> List[str]:
    """The word embedding table's initializer, and with int8 its scales."""
    return list(graph.int8_weight(name)) if graph.int8 else [graph.weight(name)]


def _layers(
    graph: Graph, spec: GraphSpec, x: str, layers: range, mask: str, prefix: str = ""
) -> List[str]:
    """The transformer layers `layers` of the weights named with `prefix`, from the states `x`:
    each layer's output states `[batch, length, hidden]`, in order."""
    states = []
    for index in layers:
        layer = f"{prefix}encoder/layer_{index}"
        # mask [batch, length]: 1 attends, 0 is padding, scored -10000 as in bert-for-tf2.
        attended = graph.attention(x, mask, layer, spec.num_heads)
        x = graph.skip_layer_norm(attended, x, f"{layer}/attention/output")
        inner = graph.dense(x, f"{layer}/intermediate", spec.activation, quantized=True)
        x = graph.skip_layer_norm(inner, x, f"{layer}/output")
        states.append(x)
    return states


def _mean_of(graph: Graph, states: List[str]) -> str:
    """The mean of several layers' states (one layer's: its own)."""
    if len(states) == 1:
        return states[0]
    summed = states[0]
    for index, state in enumerate(states[1:], start=1):
        summed = graph.op("Add", [summed, state], f"entity_layers/sum_{index}")
    share = graph.constant("entity_layers/share", np.array(1 / len(states), np.float32))
    return graph.op("Mul", [summed, share], "entity_layers/mean")


def _pooled(graph: Graph, hidden: str, pooling: str, prefix: str = "") -> str:
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
