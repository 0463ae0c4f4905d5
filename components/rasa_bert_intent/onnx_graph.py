"""The ONNX graph being written: its nodes and initializers, and the operators the export builds
the network from, ONNX Runtime's fused ones where its CPU provider has them.

int8 quantises a weight here, symmetrically with one scale per output column (the word
embeddings: per hidden dimension), and each product's input at run time
(`DynamicQuantizeMatMul`, `QAttention`), as ONNX Runtime's dynamic quantizer would, without
its copies of the whole model.
"""

from typing import Any, List, Mapping, Optional, Set, Tuple

import numpy as np
import onnx
from onnx import helper, numpy_helper

MICROSOFT = "com.microsoft"
# Prefix of the pretrained encoder's weights and nodes.
REFERENCE = "reference/"
# The word embedding table: the pretrained encoder's is not stored when it is the network's own.
WORD_TABLE = "embeddings/word_embeddings/embeddings"
# The largest magnitude of a symmetric int8 weight.
INT8_MAX = 127
# Rows of a weight quantised or compared at a time: a float copy of all the word embeddings
# would be 47 MB.
BLOCK_ROWS = 4096


class Graph:
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
        self._shares_word_table: Optional[bool] = None

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
        for rows in blocks(len(value)):
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
        """Whether the pretrained encoder's word table is the network's (compared once)."""
        if self._shares_word_table is None:
            self._shares_word_table = self._same_word_tables()
        return self._shares_word_table

    def _same_word_tables(self) -> bool:
        if WORD_TABLE not in self.reference or WORD_TABLE not in self.weights:
            return False
        theirs, ours = self.array(REFERENCE + WORD_TABLE), self.weights[WORD_TABLE]
        return theirs.shape == tuple(ours.shape) and all(
            np.array_equal(theirs[rows], np.asarray(ours[rows])) for rows in blocks(len(theirs))
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


def blocks(rows: int) -> List[slice]:
    """Slices of at most BLOCK_ROWS rows, covering `rows`."""
    return [slice(start, start + BLOCK_ROWS) for start in range(0, rows, BLOCK_ROWS)]
