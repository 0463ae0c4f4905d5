"""The exported model as a trained model's files keep it: without the pretrained encoder's
weights (the encoder the out-of-scope factor reads, and the word table the network keeps as
pretrained), which loading rebuilds from the encoder, checked against a hash of those exported."""

import hashlib
import json
from typing import Any, Callable, Dict, List, Mapping

import onnx
from onnx import helper

from rasa_bert_intent.onnx_export import (
    PRECISION,
    PRETRAINED_NAMES,
    PRETRAINED_WORD_TABLE,
    SPEC,
    GraphSpec,
    pretrained_initializers,
)

# The model's description of the hash of the initializers taken out.
PRETRAINED_SHA256 = "rasa_bert_intent.pretrained_sha256"


def without_pretrained(onnx_model: bytes) -> bytes:
    """The model less the pretrained encoder's weights (what `with_pretrained` puts back), with
    a hash of them; the model as it is if it has none."""
    model = onnx.load_from_string(onnx_model)
    props = _props(model)
    names = set(json.loads(props.get(PRETRAINED_NAMES, "[]")))
    if not names:
        return onnx_model
    kept = [i for i in model.graph.initializer if i.name not in names]
    removed = [i for i in model.graph.initializer if i.name in names]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    _set_prop(model, PRETRAINED_SHA256, _digest(removed))
    return model.SerializeToString()


def with_pretrained(onnx_model: bytes, reference: Callable[[], Mapping[str, Any]]) -> bytes:
    """The model `without_pretrained` gave, the pretrained encoder's weights rebuilt from
    `reference()` (its weights, as for `write`); `ValueError` if they are not those the model
    was written with. A model with all its weights is returned as it is."""
    model = onnx.load_from_string(onnx_model)
    props = _props(model)
    if PRETRAINED_SHA256 not in props:
        return onnx_model
    spec = GraphSpec(**json.loads(props[SPEC]))
    spec.entity_layers = tuple(spec.entity_layers)
    rebuilt = pretrained_initializers(
        reference(), spec, props[PRECISION], json.loads(props[PRETRAINED_WORD_TABLE])
    )
    expected = json.loads(props[PRETRAINED_NAMES])
    if [i.name for i in rebuilt] != expected or _digest(rebuilt) != props[PRETRAINED_SHA256]:
        raise ValueError(
            "the encoder's weights are not those the model was trained with: the encoder "
            "changed since (another version or files)"
        )
    model.graph.initializer.extend(rebuilt)
    return model.SerializeToString()


def _digest(initializers: List[onnx.TensorProto]) -> str:
    digest = hashlib.sha256()
    for initializer in initializers:
        digest.update(initializer.name.encode("utf-8"))
        digest.update(initializer.raw_data)
    return digest.hexdigest()


def _props(model: onnx.ModelProto) -> Dict[str, str]:
    return {prop.key: prop.value for prop in model.metadata_props}


def _set_prop(model: onnx.ModelProto, key: str, value: str) -> None:
    helper.set_model_props(model, {**_props(model), key: value})
