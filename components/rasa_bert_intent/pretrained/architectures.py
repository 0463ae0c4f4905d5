"""The encoder architectures a Hugging Face folder may hold, each as its differences from BERT:
its config's and weights' names, where its position table starts and whether it has token
types. The network and the export know BERT only; this module hands them every architecture
in BERT's form, under bert-for-tf2's weight names."""

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

import numpy as np

# BERT's LayerNorm epsilon, and bert-for-tf2's: Google's checkpoints do not state it.
BERT_LAYER_NORM_EPS = 1e-12
# The activations bert-for-tf2 implements and the export writes (its "gelu" is the tanh
# approximation, which is what ONNX Runtime's FastGelu computes).
ACTIVATIONS = ("gelu", "relu", "tanh", "linear")


@dataclass(frozen=True)
class Architecture:
    """How one architecture differs from BERT."""

    model_types: Tuple[str, ...]  # config.json's `model_type`
    # The prefix of the encoder's weights in a task model's file (`roberta.` in a
    # RobertaForSequenceClassification's); a bare encoder's have none.
    prefix: str
    # Its config keys that BERT names otherwise.
    config_keys: Mapping[str, str] = field(default_factory=dict)
    # Pieces of its weight names and BERT's, replaced in this order.
    weight_names: Tuple[Tuple[str, str], ...] = ()
    # RoBERTa counts positions from the padding id + 1: the rows before are never used.
    positions_after_padding: bool = False
    token_types: bool = True
    # Its LayerNorm epsilon where its config does not state one.
    layer_norm_eps: float = BERT_LAYER_NORM_EPS


BERT = Architecture(model_types=("bert",), prefix="bert.")
ROBERTA = Architecture(
    model_types=("roberta", "xlm-roberta", "camembert"),
    prefix="roberta.",
    positions_after_padding=True,
    layer_norm_eps=1e-5,
)
DISTILBERT = Architecture(
    model_types=("distilbert",),
    prefix="distilbert.",
    config_keys={
        "dim": "hidden_size",
        "n_layers": "num_hidden_layers",
        "n_heads": "num_attention_heads",
        "hidden_dim": "intermediate_size",
        "activation": "hidden_act",
        "dropout": "hidden_dropout_prob",
        "attention_dropout": "attention_probs_dropout_prob",
    },
    weight_names=(
        ("transformer.layer.", "encoder.layer."),
        ("attention.q_lin.", "attention.self.query."),
        ("attention.k_lin.", "attention.self.key."),
        ("attention.v_lin.", "attention.self.value."),
        ("attention.out_lin.", "attention.output.dense."),
        ("sa_layer_norm.", "attention.output.LayerNorm."),
        ("ffn.lin1.", "intermediate.dense."),
        ("ffn.lin2.", "output.dense."),
        ("output_layer_norm.", "output.LayerNorm."),
    ),
    token_types=False,
)
ARCHITECTURES = (BERT, ROBERTA, DISTILBERT)


def architecture_of(config: Mapping[str, Any]) -> Optional[Architecture]:
    """The architecture config.json describes; None if none of ARCHITECTURES."""
    model_type = config.get("model_type", "bert")
    return next((a for a in ARCHITECTURES if model_type in a.model_types), None)


def position_offset(architecture: Architecture, config: Mapping[str, Any]) -> int:
    """The row of the position table that the first token reads."""
    if architecture.positions_after_padding:
        return int(config.get("pad_token_id", 1)) + 1
    return 0


def bert_config(architecture: Architecture, config: Mapping[str, Any]) -> Dict[str, Any]:
    """config.json in the names of Google's `bert_config.json`, for the positions the network
    uses: its position table starts at the first token's row."""
    converted = {architecture.config_keys.get(key, key): value for key, value in config.items()}
    converted.setdefault("layer_norm_eps", architecture.layer_norm_eps)
    if isinstance(converted.get("max_position_embeddings"), int):
        converted["max_position_embeddings"] -= position_offset(architecture, config)
    if not architecture.token_types:
        converted["type_vocab_size"] = 1  # one row of zeros: every token is of segment 0
    return converted


class EncoderWeights(Mapping[str, np.ndarray]):
    """A Hugging Face folder's encoder weights in BERT's form, under bert-for-tf2's names below
    its layer (`encoder/layer_0/intermediate/kernel`), each read from the file when asked.

    The network masks token id 0, so where the tokenizer pads with another id, the word table's
    rows 0 and `pad_id` trade places (the tokenizer's ids trade them too)."""

    def __init__(
        self,
        hf_weights: Mapping[str, np.ndarray],
        architecture: Architecture,
        config: Mapping[str, Any],
        pad_id: int = 0,
    ) -> None:
        self._hf_weights = hf_weights
        self._offset = position_offset(architecture, config)
        self._pad_id = pad_id
        self._hidden = int(bert_config(architecture, config)["hidden_size"])
        self._sources: Dict[str, Tuple[str, bool]] = {}
        for hf_name in hf_weights:
            converted = _bert_for_tf2_name(_bert_name(hf_name, architecture))
            if converted is not None:
                self._sources[converted[0]] = (hf_name, converted[1])
        if not architecture.token_types:
            self._sources[_TOKEN_TYPES] = ("", False)

    def __getitem__(self, name: str) -> np.ndarray:
        hf_name, transpose = self._sources[name]
        if name == _TOKEN_TYPES and not hf_name:
            return np.zeros((1, self._hidden), np.float32)
        value = np.asarray(self._hf_weights[hf_name], dtype=np.float32)
        if transpose:
            value = value.T
        elif name == _POSITIONS:
            value = value[self._offset :]
        elif name == _WORDS and self._pad_id:
            value = value.copy()
            value[[0, self._pad_id]] = value[[self._pad_id, 0]]
        return np.ascontiguousarray(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)


_WORDS = "embeddings/word_embeddings/embeddings"
_POSITIONS = "embeddings/position_embeddings/embeddings"
_TOKEN_TYPES = "embeddings/token_type_embeddings/embeddings"
_HF_LAYER = re.compile(r"encoder/layer/(\d+)/")
# Newer Hugging Face files name a LayerNorm's weights as PyTorch does, older ones as TensorFlow.
_LAYER_NORM_LEAVES = {"weight": "gamma", "bias": "beta"}


def _bert_name(hf_name: str, architecture: Architecture) -> str:
    """A weight's name as a Hugging Face BERT model would have it."""
    name = hf_name
    if name.startswith(architecture.prefix):
        name = name[len(architecture.prefix) :]
    for piece, bert_piece in architecture.weight_names:
        name = name.replace(piece, bert_piece)
    return name


def _bert_for_tf2_name(hf_name: str) -> Optional[Tuple[str, bool]]:
    """A Hugging Face BERT weight's bert-for-tf2 name, and whether it is a dense kernel to
    transpose; None for what is not part of the encoder."""
    if not hf_name.startswith(("embeddings.", "encoder.")) or hf_name.endswith(
        ("position_ids", "token_type_ids")
    ):
        return None  # the pooler, pretraining heads and buffers
    name = _HF_LAYER.sub(r"encoder/layer_\1/", hf_name.replace(".", "/"))
    name = name.replace("intermediate/dense/", "intermediate/")
    path, leaf = name.rsplit("/", 1)
    if path.endswith("LayerNorm"):
        return f"{path}/{_LAYER_NORM_LEAVES.get(leaf, leaf)}", False
    if path.startswith("embeddings/"):
        return f"{path}/embeddings", False
    if leaf == "weight":
        return f"{path}/kernel", True
    return f"{path}/{leaf}", False
