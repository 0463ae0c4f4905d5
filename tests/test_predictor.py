"""The predictor: the exported model run by ONNX Runtime, its outputs checked when it is read."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from helpers.tiny_network import MAX_SEQ_LEN, message, tiny_network
from onnx import TensorProto, helper

from rasa_bert_intent.predictor import Predictor


def test_concurrent_calls_give_the_results_of_calls_one_at_a_time():
    predictor = Predictor(tiny_network(num_entity_tags=3).to_onnx("int8"), MAX_SEQ_LEN, "int8")
    token_id_lists = [message(length) for length in range(3, MAX_SEQ_LEN + 1)]
    expected = [predictor.predict([token_ids]) for token_ids in token_id_lists]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda ids: predictor.predict([ids]), token_id_lists * 5))
    for result, wanted in zip(results, expected * 5):
        for actual, single in zip(result[:3], wanted[:3]):
            np.testing.assert_array_equal(actual[0], single[0])


def _onnx_model(outputs) -> bytes:
    """An ONNX model of one `token_ids` input `[batch, 3]` and the named outputs."""
    values = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Cast", ["token_ids"], ["values"], to=TensorProto.FLOAT)]
        + [helper.make_node("Identity", ["values"], [name]) for name in outputs],
        "not_an_intent_model",
        [values("token_ids", TensorProto.INT32, ["batch", 3])],
        [values(name, TensorProto.FLOAT, ["batch", 3]) for name in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_a_model_of_the_right_outputs_is_read():
    predictor = Predictor(_onnx_model(["probabilities", "sentence_vector"]), MAX_SEQ_LEN, "fp32")
    assert (predictor.num_intents, predictor.num_entity_tags, predictor.hidden_size) == (3, 0, 3)


@pytest.mark.parametrize(
    "outputs",
    [
        ["probabilities"],  # no sentence vector
        ["probabilities", "sentence_vector", "logits"],
    ],
)
def test_a_model_of_other_outputs_is_refused(outputs):
    with pytest.raises(ValueError, match="not those of an intent model"):
        Predictor(_onnx_model(outputs), MAX_SEQ_LEN, "fp32")


@pytest.mark.parametrize("content", [b"", b"not a model", b"\x08\x07" * 100])
def test_bytes_that_are_no_onnx_model_are_refused(content):
    with pytest.raises(ValueError, match="ONNX Runtime cannot load it"):
        Predictor(content, MAX_SEQ_LEN, "fp32")
