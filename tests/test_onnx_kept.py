"""The model as its files keep it: without the pretrained encoder's weights, which the encoder
gives back, checked."""

import numpy as np
import onnx
import pytest
from helpers.tiny_network import (
    MAX_SEQ_LEN,
    TOKEN_ID_LISTS,
    pretrained_encoder,
    tiny_network,
)

from rasa_bert_intent import onnx_graph, onnx_kept
from rasa_bert_intent.onnx_export import PRECISIONS
from rasa_bert_intent.predictor import Predictor


@pytest.fixture(scope="module")
def tagging_network():
    return tiny_network(num_entity_tags=3)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_model_kept_leaves_out_the_pretrained_weights_and_gets_them_back_from_the_encoder(
    tagging_network, precision
):
    _, reference = pretrained_encoder(tagging_network)
    exported = tagging_network.to_onnx(precision, reference)
    kept = onnx_kept.without_pretrained(exported)
    names = {i.name for i in onnx.load_from_string(kept).graph.initializer}
    assert not any(name.startswith(onnx_graph.REFERENCE) for name in names)
    assert onnx_graph.WORD_TABLE not in names  # the network's is the pretrained one
    assert {"encoder/layer_1/intermediate/kernel", "logits/kernel"} <= names
    whole = onnx_kept.with_pretrained(kept, lambda: reference)
    for before, after in zip(
        Predictor(exported, MAX_SEQ_LEN, precision).predict(TOKEN_ID_LISTS),
        Predictor(whole, MAX_SEQ_LEN, precision).predict(TOKEN_ID_LISTS),
    ):
        np.testing.assert_array_equal(np.concatenate(before), np.concatenate(after))
    bias = "encoder/layer_1/output/dense/bias"
    other = {**reference, bias: reference[bias] + 1e-3}  # another version of the encoder
    with pytest.raises(ValueError, match="not those the model was trained with"):
        onnx_kept.with_pretrained(kept, lambda: other)
    # A network trained with its own word table keeps it; a model without the pretrained
    # encoder (or written before the split) is kept and read whole, without the encoder.
    trained_table = {**reference, onnx_graph.WORD_TABLE: reference[onnx_graph.WORD_TABLE] + 1}
    own = onnx_kept.without_pretrained(tagging_network.to_onnx(precision, trained_table))
    assert onnx_graph.WORD_TABLE in {i.name for i in onnx.load_from_string(own).graph.initializer}
    alone = tagging_network.to_onnx(precision)
    assert onnx_kept.without_pretrained(alone) == alone
    assert onnx_kept.with_pretrained(alone, lambda: pytest.fail("the encoder was read")) == alone
