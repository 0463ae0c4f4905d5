"""Fine-tuning (`rasa train --finetune`): what a training keeps to be continued, its schedule,
and the previous weights set into a new network whose heads may have grown for new intents and
entity labels. No Rasa objects."""

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Sequence, Text, Tuple

import numpy as np

from rasa_bert_intent import entities as entity_tags
from rasa_bert_intent.schedule import MAX_BATCH, Schedule, schedule

if TYPE_CHECKING:  # the network needs TensorFlow, which serving a model does not import here
    from rasa_bert_intent.network import IntentNetwork

# The trained weights are kept for fine-tuning as what the encoder cannot give again: a kernel
# (a weight of two or more axes) as its change from the pretrained one, in int8 with a scale per
# column (off by at most 1/254 of the column's largest change: under 1.6e-4 on HWU64, below what
# one step of Adam at the default rate moves a weight; docs/choosing-the-defaults.md,
# "Fine-tuning"); the rest (biases, layer norms, the heads) in half precision, a rounding of a
# relative 5e-4. About a quarter of the float32 weights' size.
STORED_WEIGHTS_DTYPE = np.float16
INT8_MAX = 127
# A fine-tune leaves the embeddings and the bottom HELD_LAYERS layers as the previous training
# left them (no gradients through them), in batches BATCH_FACTOR times a fresh training's (at
# most MAX_BATCH): on HWU64 dev splits, 0.21 and 0.28 of a full training's time instead of 0.42
# and 0.41, intents within 0.7 points of it (docs/choosing-the-defaults.md, "Fine-tuning").
HELD_LAYERS, BATCH_FACTOR = 2, 2
# File keys of a kernel's int8 change and its scales, after the weight's name; and of a hash of
# the pretrained kernels the changes are from.
CHANGE, CHANGE_SCALE = ":int8_change", ":change_scale"
PRETRAINED_SHA256 = "pretrained_sha256"
# The tagging head's weights, by IntentNetwork.named_weights' names.
TAGGING_WEIGHTS = ("entity_tag_logits/kernel", "entity_tag_logits/bias", "entity_transitions")


@dataclasses.dataclass
class FinetuneState:
    """What a fine-tune continues from (`rasa train --finetune`): the trained weights, the
    labels they were trained for, the passes of the training that made them, a hash of each
    example it saw, and the pretrained encoder's unit vectors of the examples its out-of-scope
    statistics keep, by in_scope_fit.token_id_keys (which the fine-tune need not compute)."""

    weights: Dict[str, np.ndarray]
    intents: List[Text]
    entity_labels: List[entity_tags.Label]
    epochs: int
    example_hashes: np.ndarray
    reference_vectors: Dict[int, np.ndarray] = dataclasses.field(default_factory=dict)


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


def compact(
    weights: Mapping[str, np.ndarray], pretrained: Mapping[str, Any]
) -> Dict[str, np.ndarray]:
    """The trained weights as kept (see STORED_WEIGHTS_DTYPE), against the encoder's
    `pretrained` weights (under the same names)."""
    arrays = {}
    for name, value in weights.items():
        value = np.asarray(value, np.float32)
        if value.ndim < 2 or name not in pretrained:
            arrays[name] = value.astype(STORED_WEIGHTS_DTYPE)
            continue
        change = value - np.asarray(pretrained[name], np.float32)
        scales = np.abs(change).max(axis=0) / INT8_MAX
        scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
        arrays[name + CHANGE] = np.rint(change / scales).astype(np.int8)
        arrays[name + CHANGE_SCALE] = scales
    changed = [name[: -len(CHANGE)] for name in arrays if name.endswith(CHANGE)]
    if changed:
        arrays[PRETRAINED_SHA256] = _digest(pretrained, changed)
    return arrays


def expanded(
    arrays: Mapping[str, np.ndarray], pretrained: Callable[[], Mapping[str, Any]]
) -> Dict[str, np.ndarray]:
    """The weights `compact` kept (or, from models before it, all in half precision), the
    encoder's weights read from `pretrained()` if a change needs them; `ValueError` if a
    change does not fit them."""
    kept = (CHANGE, CHANGE_SCALE, PRETRAINED_SHA256)
    weights = {n: np.asarray(v) for n, v in arrays.items() if not n.endswith(kept)}
    changed = [n[: -len(CHANGE)] for n in arrays if n.endswith(CHANGE)]
    encoder = pretrained() if changed else {}
    for name in changed:
        base = np.asarray(encoder[name], np.float32) if name in encoder else None
        change = arrays[name + CHANGE].astype(np.float32) * arrays[name + CHANGE_SCALE]
        if base is None or base.shape != change.shape:
            raise ValueError(f"the kept change of '{name}' does not fit the encoder's weight")
        weights[name] = base + change
    if changed and not np.array_equal(_digest(encoder, changed), arrays[PRETRAINED_SHA256]):
        raise ValueError(
            "the encoder's weights are not those the model was trained with: the encoder "
            "changed since (another version or files)"
        )
    return weights


def _digest(pretrained: Mapping[str, Any], names: Sequence[str]) -> np.ndarray:
    """The SHA-256 of the named pretrained weights, as bytes."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode("utf-8"))
        digest.update(np.ascontiguousarray(pretrained[name], np.float32).tobytes())
    return np.frombuffer(digest.digest(), np.uint8)


class CannotContinue(ValueError):
    """The previous model's weights do not fit the network this training builds."""


def continued_schedule(
    previous: FinetuneState,
    rows: np.ndarray,
    hashes: np.ndarray,
    intents: List[Text],
    of_new_labels: np.ndarray,
    *,
    epochs: float,
    epoch_fraction: float,
    batch_size: Any,
    prototype_head: bool,
    held_layers: int = 0,
) -> Tuple[np.ndarray, Schedule]:
    """The rows of each pass and the schedule of a fine-tune from `previous`, of the examples
    of these `hashes` (`rows`: their rows of a fresh training's pass): set `epochs` (Rasa has
    multiplied them by the fraction already) or `epoch_fraction` of the previous passes.

    The examples `of_new_labels` (an intent or entity label the previous model did not know)
    get about as many passes as a full training would give them: a new label starts from
    nothing (docs/choosing-the-defaults.md, "Fine-tuning")."""
    epochs = epochs or previous.epochs * epoch_fraction
    is_new = ~np.isin(hashes, previous.example_hashes)
    copies = max(1, round(previous.epochs / epochs))
    rows = np.concatenate([rows, np.repeat(np.flatnonzero(of_new_labels), copies - 1)])
    plan = schedule(len(rows), len(intents), epochs, batch_size, prototype_head)
    if batch_size is None:  # not set: the data's, larger
        batch_size = min(MAX_BATCH, plan.batch_size * BATCH_FACTOR)
        plan = schedule(len(rows), len(intents), epochs, batch_size, prototype_head)
    new_intents = sorted(set(intents) - set(previous.intents))
    grown = f", new intents: {', '.join(new_intents)}" if new_intents else ""
    repeated = ""
    if of_new_labels.any():
        each = f", each in {copies} copies a pass" if copies > 1 else ""
        repeated = f" ({int(of_new_labels.sum())} of new labels{each})"
    reason = (
        f"fine-tuning from the previous model: {plan.epochs:g} of its {previous.epochs} passes, "
        f"{len(hashes)} examples, {int(is_new.sum())} new{repeated}{grown}; batch "
        f"{plan.batch_size}, about {plan.steps} steps"
    )
    if held_layers:
        reason += f"; the embeddings and bottom {held_layers} layers held as they were"
    return rows, dataclasses.replace(plan, reason=reason)


def of_new_labels(examples: Sequence[Any], previous: FinetuneState) -> np.ndarray:
    """Whether each example (training.Example) has an intent or entity label that the previous
    model did not know."""
    known = set(map(tuple, previous.entity_labels))
    return np.array(
        [
            (e.intent is not None and e.intent not in previous.intents)
            or not set(entity_tags.labels_in([e.entities])) <= known
            for e in examples
        ],
        dtype=bool,
    )


def held_layers(num_layers: int) -> int:
    """The bottom layers a fine-tune of a network of `num_layers` layers holds: HELD_LAYERS,
    leaving at least the top one to train."""
    return min(HELD_LAYERS, max(0, num_layers - 1))


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
