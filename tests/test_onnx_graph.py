"""The ONNX graph's own arithmetic: int8 weights quantised symmetrically, one scale a column."""

import numpy as np
from onnx import numpy_helper

from rasa_bert_intent import onnx_graph
from rasa_bert_intent.onnx_graph import INT8_MAX, Graph


def quantised(value: np.ndarray) -> tuple:
    graph = Graph({"w": value}, {}, int8=True, layer_norm_eps=1e-12)
    names = graph.int8_weight("w")
    assert graph.int8_weight("w") == names  # written once, however often asked for
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializers}
    assert len(arrays) == 2
    return arrays[names[0]], arrays[names[1]]


def test_int8_weights_are_symmetric_per_column_and_within_half_a_step(monkeypatch):
    value = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    value[:, 3] = 0.0  # a column of zeros gets scale 1, not a division by 0
    weights, scales = quantised(value)
    assert weights.dtype == np.int8 and np.abs(weights).max() == INT8_MAX
    np.testing.assert_allclose(scales[:3], np.abs(value[:, :3]).max(axis=0) / INT8_MAX)
    assert scales[3] == 1.0 and not weights[:, 3].any()
    assert np.all(np.abs(weights * scales - value) <= scales / 2 + 1e-7)
    # Quantised a few rows at a time, to hold no float copy of a whole table: the same values.
    monkeypatch.setattr(onnx_graph, "BLOCK_ROWS", 3)
    in_blocks = quantised(value)
    np.testing.assert_array_equal(in_blocks[0], weights)
    np.testing.assert_array_equal(in_blocks[1], scales)
