"""Rewrites of the ONNX graph tf2onnx makes of an `IntentNetwork`, into fewer, larger operators.

At one message of 16 word pieces ONNX Runtime spends as much time between operators as in
them, and neither tf2onnx nor ONNX Runtime's own fusions recognise bert-for-tf2's patterns:
- Keras' `Dense` on a `[batch, length, hidden]` input is a `tensordot`: Reshape to 2-D,
  MatMul, Reshape back to a shape computed from the input's at run time. ONNX's MatMul
  broadcasts over the leading axes, so the MatMul alone gives the same result.
- params_flow's layer normalisation is 11 operators (`tf.nn.moments`, `rsqrt`, the
  `batch_normalization` arithmetic); ONNX (opset 17) has it as one, `LayerNormalization`.
- Attention's query, key and value are three Dense layers of one input: one MatMul of their
  weights side by side, one Add and a Split compute the same.
Each rewrite checks the whole pattern, constants included, and leaves anything else alone;
operators no longer used are removed afterwards.
"""

from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np
import onnx
from onnx import helper, numpy_helper


class _Graph:
    """Lookups over one graph: constants, the producer and the consumers of each tensor."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        self.producer: Dict[str, onnx.NodeProto] = {}
        self.consumers: Dict[str, List[onnx.NodeProto]] = defaultdict(list)
        for node in graph.node:
            for output in node.output:
                self.producer[output] = node
            for name in node.input:
                self.consumers[name].append(node)

    def node(self, tensor: str, op_type: str) -> Optional[onnx.NodeProto]:
        """The operator of this type that computes `tensor`, else None."""
        node = self.producer.get(tensor)
        return node if node is not None and node.op_type == op_type else None

    def constant(self, tensor: str) -> Optional[np.ndarray]:
        return self.constants.get(tensor)

    def skip_casts(self, tensor: str) -> str:
        while self.node(tensor, "Cast") is not None:
            tensor = self.producer[tensor].input[0]
        return tensor


def simplify(model: onnx.ModelProto) -> Dict[str, int]:
    """Applies the rewrites in place; how many of each it made."""
    counts = {"tensordot": _merge_tensordots(model.graph)}
    counts["layer_norm"] = _fuse_layer_norms(model.graph)
    counts["shared_input_projections"] = _merge_projections(model.graph)
    _remove_unused(model.graph)
    return counts


def _merge_tensordots(graph: onnx.GraphProto) -> int:
    """Reshape(x, [-1, k]) → MatMul(·, W[k, n]) → Reshape(·, shape(x)[:-1] + [n]) becomes
    MatMul(x, W)."""
    lookup = _Graph(graph)
    merged = 0
    for matmul in list(graph.node):
        weights = lookup.constant(matmul.input[1]) if matmul.op_type == "MatMul" else None
        if weights is None or weights.ndim != 2:
            continue
        flatten = lookup.node(matmul.input[0], "Reshape")
        if flatten is None or not np.array_equal(
            lookup.constant(flatten.input[1]), [-1, weights.shape[0]]
        ):
            continue
        unflattens = lookup.consumers[matmul.output[0]]
        if len(unflattens) != 1 or unflattens[0].op_type != "Reshape":
            continue
        unflatten = unflattens[0]
        shape, tensor = unflatten.input[1], flatten.input[0]
        if not _is_leading_shape_and(lookup, shape, tensor, weights.shape[1]):
            continue
        matmul.input[0] = flatten.input[0]
        matmul.output[0] = unflatten.output[0]
        graph.node.remove(unflatten)
        merged += 1
    return merged


def _is_leading_shape_and(lookup: _Graph, shape: str, tensor: str, last: int) -> bool:
    """Whether `shape` is computed as Concat(Shape(tensor)[0:rank - 1], [last])."""
    concat = lookup.node(lookup.skip_casts(shape), "Concat")
    if concat is None or len(concat.input) != 2:
        return False
    if not np.array_equal(lookup.constant(concat.input[1]), [last]):
        return False
    gather = lookup.node(concat.input[0], "Gather")
    if gather is None:
        return False
    indices = lookup.constant(gather.input[1])
    source = lookup.node(lookup.skip_casts(gather.input[0]), "Shape")
    return (
        source is not None
        and source.input[0] == tensor
        and indices is not None
        and indices.ndim == 1
        and np.array_equal(indices, np.arange(len(indices)))
    )


def _fuse_layer_norms(graph: onnx.GraphProto) -> int:
    """x·γ/√(var + ε) + (β − mean·γ/√(var + ε)) becomes LayerNormalization(x, γ, β, ε),
    mean and var being those of x over its last axis."""
    lookup = _Graph(graph)
    fused = 0
    for index, add in reversed(list(enumerate(graph.node))):
        if add.op_type != "Add":
            continue
        found = _layer_norm_at(lookup, add)
        if found is None:
            continue
        x, gamma, beta, epsilon = found
        graph.node.insert(
            index,
            helper.make_node(
                "LayerNormalization",
                [x, gamma, beta],
                [add.output[0]],
                name=f"{add.name}/LayerNormalization",
                axis=-1,
                epsilon=epsilon,
            ),
        )
        graph.node.remove(add)
        fused += 1
    return fused


def _layer_norm_at(lookup: _Graph, add: onnx.NodeProto) -> Optional[tuple]:
    """(x, γ, β, ε) if `add` ends params_flow's layer normalisation of x, else None."""
    for scaled_name, shift_name in (add.input, reversed(add.input)):
        scaled = lookup.node(scaled_name, "Mul")
        shift = lookup.node(shift_name, "Sub")
        if scaled is None or shift is None:
            continue
        beta = shift.input[0]
        mean_scaled = lookup.node(shift.input[1], "Mul")
        if lookup.constant(beta) is None or mean_scaled is None:
            continue
        for x, factor in (scaled.input, reversed(scaled.input)):
            if factor not in mean_scaled.input:
                continue
            mean = [name for name in mean_scaled.input if name != factor]
            found = _inverse_deviation(lookup, factor, x)
            if found is not None and len(mean) == 1 and _is_mean_over_last(lookup, mean[0], x):
                gamma, epsilon = found
                if lookup.constant(gamma).shape == lookup.constant(beta).shape:
                    return x, gamma, beta, epsilon
    return None


def _inverse_deviation(lookup: _Graph, factor: str, x: str) -> Optional[tuple]:
    """(γ, ε) if `factor` is γ / √(mean((x − mean(x))²) + ε), else None."""
    multiply = lookup.node(factor, "Mul")
    if multiply is None:
        return None
    for reciprocal_name, gamma in (multiply.input, reversed(multiply.input)):
        reciprocal = lookup.node(reciprocal_name, "Reciprocal")
        if reciprocal is None or lookup.constant(gamma) is None:
            continue
        sqrt = lookup.node(reciprocal.input[0], "Sqrt")
        add = sqrt and lookup.node(sqrt.input[0], "Add")
        if add is None:
            continue
        variance, epsilon = add.input
        epsilon_value = lookup.constant(epsilon)
        if epsilon_value is None or epsilon_value.size != 1:
            continue
        square = lookup.node(_mean_input(lookup, variance) or "", "Mul")
        if square is None or square.input[0] != square.input[1]:
            continue
        centred = lookup.node(square.input[0], "Sub")
        if centred is not None and centred.input[0] == x and _is_mean_over_last(
            lookup, centred.input[1], x
        ):
            return gamma, float(epsilon_value.reshape(()))
    return None


def _mean_input(lookup: _Graph, tensor: str) -> Optional[str]:
    """What `tensor` averages over the last axis of a rank-3 tensor, keeping it; else None.

    tf2onnx writes that mean as ReduceMean or, its optimizer's rewrite, GlobalAveragePool
    (which averages a rank-3 tensor over its last axis too).
    """
    node = lookup.producer.get(tensor)
    if node is None:
        return None
    if node.op_type == "GlobalAveragePool":
        return node.input[0]
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if (
        node.op_type == "ReduceMean"
        and len(node.input) == 1
        and list(attributes.get("axes", [])) in ([2], [-1])
        and attributes.get("keepdims", 1) == 1
    ):
        return node.input[0]
    return None


def _is_mean_over_last(lookup: _Graph, tensor: str, x: str) -> bool:
    return _mean_input(lookup, tensor) == x


def _merge_projections(graph: onnx.GraphProto) -> int:
    """Dense layers of one input (attention's query, key and value) become one MatMul and Add
    of their weights side by side, then a Split: one larger product instead of three."""
    lookup = _Graph(graph)
    merged = 0
    for tensor, consumers in list(lookup.consumers.items()):
        layers = [layer for layer in (_dense(lookup, node) for node in consumers) if layer]
        layers = [(matmul, add) for matmul, add in layers if matmul.input[0] == tensor]
        if len(layers) < 2:
            continue
        if len({lookup.constant(matmul.input[1]).shape[0] for matmul, _ in layers}) != 1:
            continue
        weights = [lookup.constant(matmul.input[1]) for matmul, _ in layers]
        biases = [lookup.constant(_other_input(add, matmul.output[0])) for matmul, add in layers]
        name = f"{layers[0][0].name}/merged_{len(layers)}"
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.concatenate(weights, axis=1), f"{name}/kernel"),
                numpy_helper.from_array(np.concatenate(biases), f"{name}/bias"),
                numpy_helper.from_array(
                    np.array([w.shape[1] for w in weights], np.int64), f"{name}/split"
                ),
            ]
        )
        index = min(list(graph.node).index(matmul) for matmul, _ in layers)
        for offset, node in enumerate(
            [
                helper.make_node("MatMul", [tensor, f"{name}/kernel"], [f"{name}/product"]),
                helper.make_node(
                    "Add", [f"{name}/product", f"{name}/bias"], [f"{name}/biased"]
                ),
                helper.make_node(
                    "Split",
                    [f"{name}/biased", f"{name}/split"],
                    [add.output[0] for _, add in layers],
                    axis=-1,
                ),
            ]
        ):
            graph.node.insert(index + offset, node)
        for matmul, add in layers:
            graph.node.remove(add)
            graph.node.remove(matmul)
        merged += 1
    return merged


def _dense(lookup: _Graph, node: onnx.NodeProto) -> Optional[tuple]:
    """(MatMul, Add) if `node` multiplies its first input by a constant `[k, n]` matrix and
    its only consumer adds a constant `[n]` bias, else None."""
    weights = lookup.constant(node.input[1]) if node.op_type == "MatMul" else None
    if weights is None or weights.ndim != 2 or len(lookup.consumers[node.output[0]]) != 1:
        return None
    add = lookup.consumers[node.output[0]][0]
    if add.op_type != "Add":
        return None
    bias = lookup.constant(_other_input(add, node.output[0]))
    return (node, add) if bias is not None and bias.shape == (weights.shape[1],) else None


def _other_input(node: onnx.NodeProto, tensor: str) -> str:
    return node.input[1] if node.input[0] == tensor else node.input[0]


def _remove_unused(graph: onnx.GraphProto) -> None:
    """Removes operators and constants nothing reads, until none is left."""
    outputs = {output.name for output in graph.output}
    while True:
        read = outputs | {name for node in graph.node for name in node.input}
        unused = [node for node in graph.node if not any(out in read for out in node.output)]
        if not unused:
            break
        for node in unused:
            graph.node.remove(node)
    read = outputs | {name for node in graph.node for name in node.input}
    for init in [init for init in graph.initializer if init.name not in read]:
        graph.initializer.remove(init)
