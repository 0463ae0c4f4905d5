"""Fine-tuning (`rasa train --finetune`): what a training keeps to be continued, and the
previous weights set into a new network whose heads may have grown for new intents and entity
labels. No Rasa objects."""

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Text

import numpy as np

from rasa_bert_intent import entities as entity_tags
from rasa_bert_intent.model import IntentNetwork

# The trained weights are kept for fine-tuning in half precision: half the archive of float32,
# and a rounding (a relative 5e-4) far below what one step of training moves a weight.
STORED_WEIGHTS_DTYPE = np.float16
# The share of the previous training's passes that `rasa train --finetune --epoch-fraction`
# asks for: Rasa puts it into the config of the components it fine-tunes.
FINETUNING_EPOCH_FRACTION = "finetuning_epoch_fraction"
# The tagging head's weights, by IntentNetwork.named_weights' names.
TAGGING_WEIGHTS = ("entity_tag_logits/kernel", "entity_tag_logits/bias", "entity_transitions")


@dataclass
class TrainedWeights:
    """What a fine-tune continues from (`rasa train --finetune`): the trained weights, the
    labels they were trained for, the passes of the training that made them, and a hash of
    each example it saw."""

    weights: Dict[str, np.ndarray]
    intents: List[Text]
    entity_labels: List[entity_tags.Label]
    epochs: int
    example_hashes: np.ndarray


def example_hashes(examples: Sequence[Any]) -> np.ndarray:
    """A 64-bit hash of each example's (training.Example's) text, intent and entities, to count
    new examples."""
    return np.array(
        [
            int.from_bytes(
                hashlib.blake2b(
                    json.dumps([e.text, e.intent, e.entities], sort_keys=True).encode("utf-8"),
                    digest_size=8,
                ).digest(),
                "little",
            )
            for e in examples
        ],
        dtype=np.uint64,
    )


class CannotContinue(ValueError):
    """The previous model's weights do not fit the network this training builds."""


def continue_from(
    network: IntentNetwork,
    previous: TrainedWeights,
    intents: List[Text],
    entity_labels: List[entity_tags.Label],
) -> None:
    """Sets the previous training's weights; the rows of intents and entity labels it did not
    know keep the values a fresh training starts from."""
    weights = network.named_weights()
    trained = set(network.trainable_names()) - set(TAGGING_WEIGHTS)
    stored = set(previous.weights) - set(TAGGING_WEIGHTS)
    if trained != stored:
        differing = sorted(trained ^ stored)
        raise CannotContinue(
            f"it trained other weights than this network trains ({', '.join(differing[:3])}"
            f"{', …' if len(differing) > 3 else ''}): other layers, or other layers kept as "
            f"pretrained"
        )
    old_intent = _old_rows(intents, previous.intents)
    old_tag = _old_tags(entity_labels, previous.entity_labels)
    values = {}
    for name, old in previous.weights.items():
        if name not in weights and name in TAGGING_WEIGHTS:
            continue  # the new data annotates no entities
        if name not in weights:
            raise CannotContinue(f"it has a weight '{name}' that this network lacks")
        shape = tuple(weights[name].shape)
        if name in ("logits/kernel", "logits/bias"):
            value = _carried_rows(weights[name].numpy(), old, old_intent)
        elif name in TAGGING_WEIGHTS[:2]:
            value = _carried_rows(weights[name].numpy(), old, old_tag)
        elif name == "entity_transitions":
            value = weights[name].numpy()
            new_rows, old_rows = np.flatnonzero(old_tag >= 0), old_tag[old_tag >= 0]
            value[np.ix_(new_rows, new_rows)] = old[np.ix_(old_rows, old_rows)]
        elif shape == old.shape:
            value = old
        else:
            raise CannotContinue(
                f"its weight '{name}' has shape {old.shape}, this network's {shape}"
            )
        values[name] = value.astype(weights[name].dtype.as_numpy_dtype)
    network.set_named_weights(values)


def _old_rows(names: Sequence[Any], old_names: Sequence[Any]) -> np.ndarray:
    """For each name, its index among `old_names`, or -1."""
    index = {name: row for row, name in enumerate(old_names)}
    return np.array([index.get(name, -1) for name in names], dtype=np.int64)


def _old_tags(
    labels: Sequence[entity_tags.Label], old_labels: Sequence[entity_tags.Label]
) -> np.ndarray:
    """For each entity tag of `labels`, the same tag among `old_labels`' (-1 if new)."""
    if not labels:
        return np.zeros(0, dtype=np.int64)
    old_label = _old_rows(labels, old_labels)
    tags = [0]  # outside
    for old in old_label:
        tags += entity_tags.begin_and_inside_tags(old) if old >= 0 else (-1, -1)
    return np.array(tags, dtype=np.int64)


def _carried_rows(fresh: np.ndarray, old: np.ndarray, old_rows: np.ndarray) -> np.ndarray:
    """`fresh` (a head's weight, one row per label on its last axis) with `old`'s rows copied
    where `old_rows` names one; rows of new labels keep their fresh start."""
    new_rows = np.flatnonzero(old_rows >= 0)
    fresh[..., new_rows] = old[..., old_rows[new_rows]]
    return fresh
