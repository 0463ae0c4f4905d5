"""The training schedule: passes over the data and messages per batch, following the data's
size, and the rows of each pass, rare intents repeated. Chosen on dev splits of SNIPS
subsamples and HWU64 (docs/choosing-the-defaults.md, "Every assistant")."""

import math
from collections import Counter
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

# Messages per batch: the examples over BATCH_DIVISOR, rounded down to a power of two, kept
# within these bounds (70 or 1,000 examples: 8; 2,000: 16; 13,784: 32).
MIN_BATCH, MAX_BATCH, BATCH_DIVISOR = 8, 32, 64
# About MIN_STEPS optimizer updates, or STEPS_PER_INTENT for each intent where that is more (a
# softmax over many intents needs longer to grow sure), times the cube root of the batch over
# MIN_BATCH (a larger batch moves the network less per example), in whole passes within
# MIN_EPOCHS and MAX_EPOCHS.
MIN_STEPS, STEPS_PER_INTENT, MIN_EPOCHS, MAX_EPOCHS = 400, 15, 3, 40
# A head started from the intents' prototypes needs fewer steps, and no more passes than show
# PROTOTYPE_MAX_SHOWN examples (docs/choosing-the-defaults.md, "Few examples").
PROTOTYPE_STEPS_PER_INTENT, PROTOTYPE_MAX_SHOWN = 8, 6000
# Intents with fewer examples than this share of the largest intent's are repeated in each
# pass up to it, so that a rare intent is not drowned by a common one.
MIN_INTENT_SHARE = 0.1


@dataclass
class Schedule:
    """Passes over the data, messages per batch, and why."""

    epochs: float  # whole, but for a fine-tune's fraction of the previous training's
    batch_size: int
    steps: int
    reason: str


def schedule(
    num_examples: int,
    num_intents: int,
    epochs: Optional[float] = None,
    batch_size: Optional[int] = None,
    prototype_head: bool = False,
) -> Schedule:
    """The training schedule for the examples of some intents, of a head started at random or
    from the prototypes; set values override it (a fine-tune's fraction of passes may leave a
    last pass partial)."""
    if batch_size is None:
        wanted = max(1, num_examples // BATCH_DIVISOR)
        batch_size = min(MAX_BATCH, max(MIN_BATCH, 2 ** int(math.log2(wanted))))
    per_epoch = max(1, math.ceil(num_examples / batch_size))
    chosen = "set" if epochs is not None else "chosen for the data's size"
    if epochs is None:
        per_intent = PROTOTYPE_STEPS_PER_INTENT if prototype_head else STEPS_PER_INTENT
        per_intent *= (batch_size / MIN_BATCH) ** (1 / 3)
        steps = max(MIN_STEPS, per_intent * num_intents)
        wanted = round(steps / per_epoch)
        if prototype_head:
            wanted = min(wanted, PROTOTYPE_MAX_SHOWN // max(1, num_examples))
        epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, wanted))
    steps = math.ceil(epochs * per_epoch)
    return Schedule(
        epochs,
        batch_size,
        steps,
        f"{num_examples} examples of {num_intents} intents: {epochs} epochs of batch "
        f"{batch_size}, about {steps} steps ({chosen})",
    )


def balanced_rows(intent_labels: Sequence[int]) -> np.ndarray:
    """Row indices of one training pass, rare intents' rows repeated (MIN_INTENT_SHARE)."""
    labels = np.asarray(intent_labels)
    counts = Counter(labels.tolist())
    floor = math.ceil(MIN_INTENT_SHARE * max(counts.values(), default=0))
    rows = [np.arange(len(labels))]
    for label, count in counts.items():
        if count < floor:
            own = np.flatnonzero(labels == label)
            rows.append(np.resize(own, floor - count))
    return np.concatenate(rows)


def intent_passes(intent_labels: Sequence[int], epochs: int) -> np.ndarray:
    """Passes over each intent's examples (in the order of the sorted labels) in `epochs`
    passes of `balanced_rows`."""
    labels = np.asarray(intent_labels)
    _, counts = np.unique(labels, return_counts=True)
    _, rows = np.unique(labels[balanced_rows(labels)], return_counts=True)
    return epochs * rows / counts
