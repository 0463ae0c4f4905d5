"""Fine-tuning (`rasa train --finetune`): what a training keeps to be continued, its schedule,
and the previous weights set into a new network whose heads may have grown for new intents and
entity labels. No Rasa objects."""

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any, Dict, List, Sequence, Text, Tuple

import numpy as np

from rasa_bert_intent import entities as entity_tags
from rasa_bert_intent.schedule import Schedule, schedule

if TYPE_CHECKING:  # the network needs TensorFlow, which serving a model does not import here
    from rasa_bert_intent.network import IntentNetwork

# The trained weights are kept for fine-tuning in half precision: half the archive of float32,
# and a rounding (a relative 5e-4) far below what one step of training moves a weight.
STORED_WEIGHTS_DTYPE = np.float16
# The tagging head's weights, by IntentNetwork.named_weights' names.
TAGGING_WEIGHTS = ("entity_tag_logits/kernel", "entity_tag_logits/bias", "entity_transitions")


@dataclasses.dataclass
class FinetuneState:
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


def continued_schedule(
    previous: FinetuneState,
    rows: np.ndarray,
    hashes: np.ndarray,
    intents: List[Text],
    *,
    epochs: float,
    epoch_fraction: float,
    batch_size: Any,
    prototype_head: bool,
) -> Tuple[np.ndarray, Schedule]:
    """The rows of each pass and the schedule of a fine-tune from `previous`, of the examples
    of these `hashes` (`rows`: their rows of a fresh training's pass): set `epochs` (Rasa has
    multiplied them by the fraction already) or `epoch_fraction` of the previous passes.

    The examples the previous training did not see get about as many passes as a full
    training would give them: a new intent starts from nothing (docs/choosing-the-defaults.md,
    "Fine-tuning")."""
    epochs = epochs or previous.epochs * epoch_fraction
    is_new = ~np.isin(hashes, previous.example_hashes)
    copies = max(1, round(previous.epochs / epochs))
    rows = np.concatenate([rows, np.repeat(np.flatnonzero(is_new), copies - 1)])
    plan = schedule(len(rows), len(intents), epochs, batch_size, prototype_head)
    new_intents = sorted(set(intents) - set(previous.intents))
    grown = f", new intents: {', '.join(new_intents)}" if new_intents else ""
    repeated = f" (each in {copies} copies a pass)" if copies > 1 and is_new.any() else ""
    reason = (
        f"fine-tuning from the previous model: {plan.epochs:g} of its {previous.epochs} passes, "
        f"{len(hashes)} examples, {int(is_new.sum())} new{repeated}{grown}; batch "
        f"{plan.batch_size}, about {plan.steps} steps"
    )
    return rows, dataclasses.replace(plan, reason=reason)


def continue_from(
    network: "IntentNetwork",
    previous: FinetuneState,
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
