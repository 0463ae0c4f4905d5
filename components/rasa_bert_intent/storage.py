"""The trained component's files in Rasa's model storage: writing them, reading them back checked."""

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any, Callable, List, Mapping, Optional

import numpy as np
import tensorflow as tf

import rasa.shared.utils.io
from rasa.shared.exceptions import RasaException

from rasa_bert_intent import entities as entity_tags
from rasa_bert_intent import onnx_kept
from rasa_bert_intent.finetune import FinetuneState, compact, expanded
from rasa_bert_intent.in_scope import InScopeModel
from rasa_bert_intent.predictor import Predictor, ServedModel
from rasa_bert_intent.pretrained.tokenization import (
    TOKENIZER_FILE,
    VOCAB_FILE,
    HuggingFaceTokenizer,
    WordPieceTokenizer,
)
from rasa_bert_intent.settings import COMPONENT

# The exported network less the pretrained encoder's weights, which loading reads from the
# encoder again (onnx_kept.without_pretrained): the encoder must be installed where the model
# is served, as a spaCy model is for SpacyNLP.
MODEL_FILE = "model.onnx"
# The tokenizer's file is VOCAB_FILE (WordPiece's vocabulary) or TOKENIZER_FILE, as the
# metadata's "tokenizer" names.
METADATA_FILE = "metadata.json"
IN_SCOPE_FILE = "in_scope.npz"  # only with out_of_scope_detection
# The trained weights as finetune.compact keeps them, for `rasa train --finetune`: serving never
# reads them.
WEIGHTS_FILE = "trained_weights.npz"
# Where the example hashes go in WEIGHTS_FILE, beside the weights' names (which hold a "/").
EXAMPLE_HASHES = "example_hashes"
FORMAT_VERSION = 10  # raised whenever the files above change incompatibly
# Earlier versions read as they were written: 7 always has a vocab.txt, 7 and 8 have no
# responses (no retrieval intents), 7 to 9 have the whole network in MODEL_FILE and all the
# trained weights in half precision.
READABLE_VERSIONS = (7, 8, 9, FORMAT_VERSION)
# The encoder's weights as `training.pretrained_weights` gives them, read when called.
Pretrained = Callable[[], Mapping[str, Any]]


def write(model_dir: Path, trained: ServedModel, pretrained: Mapping[str, Any]) -> None:
    """Writes the ONNX model, tokenizer, out-of-scope statistics, trained weights and metadata,
    with the SHA-256 of each binary file (ONNX Runtime does not notice every change to a
    model); what the encoder's `pretrained` weights hold is left out."""
    in_scope = b""
    if trained.in_scope is not None:
        buffer = io.BytesIO()
        np.savez(buffer, **trained.in_scope.to_arrays())
        in_scope = buffer.getvalue()
        (model_dir / IN_SCOPE_FILE).write_bytes(in_scope)
    onnx_model = onnx_kept.without_pretrained(trained.predictor.onnx_model)
    (model_dir / MODEL_FILE).write_bytes(onnx_model)
    tokenizer = trained.tokenizer
    if isinstance(tokenizer, HuggingFaceTokenizer):
        tokenizer_file = TOKENIZER_FILE
        shutil.copyfile(tokenizer.tokenizer_file, model_dir / TOKENIZER_FILE)
    else:
        tokenizer_file = VOCAB_FILE
        shutil.copyfile(tokenizer.vocab_file, model_dir / VOCAB_FILE)
    weights = trained.finetune_state
    if weights is not None:
        buffer = io.BytesIO()
        arrays = compact(weights.weights, pretrained)
        np.savez(buffer, **arrays, **{EXAMPLE_HASHES: weights.example_hashes})
        (model_dir / WEIGHTS_FILE).write_bytes(buffer.getvalue())
    transitions = trained.entity_transitions
    rasa.shared.utils.io.dump_obj_as_json_to_file(
        model_dir / METADATA_FILE,
        {
            "format_version": FORMAT_VERSION,
            "intents": trained.intents,
            "entity_labels": [list(label) for label in trained.entity_labels],
            "entity_transitions": None if transitions is None else transitions.tolist(),
            "do_lower_case": tokenizer.do_lower_case,
            "tokenizer": tokenizer_file,
            "max_seq_len": trained.predictor.max_seq_len,
            "precision": trained.predictor.precision,
            "model_sha256": hashlib.sha256(onnx_model).hexdigest(),
            "in_scope_sha256": hashlib.sha256(in_scope).hexdigest() if in_scope else None,
            # Passes of the training that made the weights (a fine-tune's fraction applies to them).
            "trained_epochs": None if weights is None else weights.epochs,
            "responses": trained.responses,
        },
    )


def is_trained(model_dir: Path) -> bool:
    """Whether training wrote its files here (it writes none without examples)."""
    return (model_dir / METADATA_FILE).is_file()


def read(model_dir: Path, pretrained: Pretrained) -> ServedModel:
    """The model `write` wrote, with the encoder's weights `pretrained()` gives;
    `RasaException` naming the first missing, damaged or inconsistent file."""
    file_name = METADATA_FILE
    try:
        metadata = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
        if metadata.get("format_version") not in READABLE_VERSIONS:
            raise ValueError(
                f"format version {metadata.get('format_version')!r}, this version of "
                f"rasa-bert-intent reads {' and '.join(map(str, READABLE_VERSIONS))}"
            )
        intents = metadata["intents"]
        responses = metadata.get("responses") or {}  # none before version 9
        if not isinstance(responses, dict):
            raise ValueError("its responses are not a mapping of response keys")
        entity_labels = [tuple(label) for label in metadata["entity_labels"]]
        entity_transitions = None
        if metadata["entity_transitions"] is not None:
            entity_transitions = np.array(metadata["entity_transitions"], np.float64)
        file_name = metadata.get("tokenizer", VOCAB_FILE)
        if file_name == TOKENIZER_FILE:
            tokenizer = HuggingFaceTokenizer(model_dir / TOKENIZER_FILE)
        else:
            tokenizer = WordPieceTokenizer(model_dir / VOCAB_FILE, metadata["do_lower_case"])
        file_name = MODEL_FILE
        onnx_model = _read_as_written(model_dir / MODEL_FILE, metadata["model_sha256"])
        onnx_model = onnx_kept.with_pretrained(onnx_model, pretrained)
        predictor = Predictor(onnx_model, metadata["max_seq_len"], metadata["precision"])
        _check_fits(predictor, intents, entity_labels, entity_transitions)
        in_scope = None
        if metadata["in_scope_sha256"] is not None:
            file_name = IN_SCOPE_FILE
            in_scope = _read_in_scope(model_dir, metadata["in_scope_sha256"], predictor, intents)
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        tf.errors.OpError,  # tf.io.gfile's errors, from reading the vocabulary
    ) as error:
        raise RasaException(
            f"{COMPONENT}: cannot load the trained model's '{file_name}' from '{model_dir}' "
            f"({error.__class__.__name__}: {error}). Retrain the model with `rasa train`."
        ) from error
    return ServedModel(
        intents,
        entity_labels,
        entity_transitions,
        tokenizer,
        predictor,
        in_scope,
        responses=responses,
    )


def read_finetune_state(model_dir: Path, pretrained: Pretrained) -> FinetuneState:
    """What a fine-tune continues from, with the encoder's weights `pretrained()` gives;
    `RasaException` if the model lacks it or it is damaged."""
    file_name = WEIGHTS_FILE
    try:
        metadata = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
        if not (model_dir / WEIGHTS_FILE).is_file() or not metadata.get("trained_epochs"):
            raise RasaException(
                f"{COMPONENT}: the model to fine-tune has no trained weights to continue from "
                f"(it was trained by a version of rasa-bert-intent that did not keep them). "
                f"Train it once without --finetune."
            )
        with np.load(model_dir / WEIGHTS_FILE, allow_pickle=False) as arrays:
            kept = {name: arrays[name] for name in arrays.files if name != EXAMPLE_HASHES}
            hashes = arrays[EXAMPLE_HASHES]
        weights = expanded(kept, pretrained)
        reference_vectors = {}
        if metadata.get("in_scope_sha256"):
            file_name = IN_SCOPE_FILE
            content = _read_as_written(model_dir / IN_SCOPE_FILE, metadata["in_scope_sha256"])
            with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
                if "reference_keys" in arrays.files:  # none before version 10
                    keys = arrays["reference_keys"].tolist()
                    reference_vectors = dict(zip(keys, arrays["references"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise RasaException(
            f"{COMPONENT}: cannot read '{file_name}' of the model to fine-tune from "
            f"'{model_dir}' ({error.__class__.__name__}: {error}). Train it once without "
            f"--finetune."
        ) from error
    return FinetuneState(
        weights,
        metadata["intents"],
        [tuple(label) for label in metadata["entity_labels"]],
        metadata["trained_epochs"],
        hashes,
        reference_vectors,
    )


def _check_fits(
    predictor: Predictor,
    intents: List[str],
    entity_labels: List[entity_tags.Label],
    entity_transitions: Optional[np.ndarray],
) -> None:
    """`ValueError` unless the model predicts the intents and entity tags the metadata names."""
    expected_tags = entity_tags.num_tags(entity_labels)
    if (
        predictor.num_intents != max(1, len(intents))
        or predictor.num_entity_tags != expected_tags
        or (
            entity_transitions is not None
            and entity_transitions.shape != (expected_tags, expected_tags)
        )
    ):
        raise ValueError(
            f"it predicts {predictor.num_intents} intents and {predictor.num_entity_tags} "
            f"entity tags, the metadata names {len(intents)} intents and "
            f"{len(entity_labels)} entity labels"
        )


def _read_in_scope(
    model_dir: Path, sha256: str, predictor: Predictor, intents: List[str]
) -> InScopeModel:
    """The out-of-scope statistics; `ValueError` if they do not fit the model."""
    content = _read_as_written(model_dir / IN_SCOPE_FILE, sha256)
    with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
        in_scope = InScopeModel.from_arrays(arrays)
    if (
        in_scope.means.shape != (len(intents), predictor.hidden_size)
        or in_scope.reference_size != predictor.reference_size
    ):
        raise ValueError("its intent means or reference vectors do not fit the model")
    return in_scope


def _read_as_written(path: Path, sha256: str) -> bytes:
    """The file's bytes; `ValueError` if they differ from those training wrote."""
    content = path.read_bytes()
    if hashlib.sha256(content).hexdigest() != sha256:
        raise ValueError("the file differs from the one training wrote")
    return content
