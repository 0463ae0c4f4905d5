"""Training, from examples to a servable model: tokenize, tag, fit the network on a schedule
that follows the data's size, export it, fit the out-of-scope statistics. No Rasa objects."""

import ctypes
import gc
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Text

import numpy as np
import tensorflow as tf

from rasa_bert_intent import entities as entity_tags
from rasa_bert_intent.encoder import HuggingFaceEncoder, PretrainedEncoder
from rasa_bert_intent.finetune import (
    FINETUNING_EPOCH_FRACTION,
    STORED_WEIGHTS_DTYPE,
    TrainedWeights,
    continue_from,
    example_hashes,
)
from rasa_bert_intent.in_scope import InScopeModel
from rasa_bert_intent.model import IntentModel, IntentNetwork
from rasa_bert_intent.predictor import Outputs, Predictor
from rasa_bert_intent.hf_tokenizer import TextTokenizer
from rasa_bert_intent.tokenization import Encoding

logger = logging.getLogger(__name__)
COMPONENT = "BertIntentClassifier"

# The default schedule (docs/choosing-the-defaults.md, "Every assistant"). Few examples need
# many passes of small batches to get enough optimizer updates; many examples need few passes
# of large batches to stay fast. Chosen on dev splits of SNIPS subsamples and HWU64.
# Messages per batch: the examples over BATCH_DIVISOR, rounded down to a power of two, kept
# within these bounds (70 or 1,000 examples: 8; 2,000: 16; 13,784: 32).
MIN_BATCH, MAX_BATCH, BATCH_DIVISOR = 8, 32, 64
# About MIN_STEPS optimizer updates, or STEPS_PER_INTENT for each intent where that is more
# (a softmax over 64 intents needs longer to grow sure than one over 7), in whole passes within
# MIN_EPOCHS and MAX_EPOCHS. Full SNIPS gets the minimum of 3 passes, because the tagger still
# learns in the third (dev slot F1 +1.2). HWU64 at 10 per intent gets 960 steps (dev accuracy
# 82.0% against 79.8% with 400). A batch larger than MIN_BATCH moves the network less per
# example, so the steps per intent grow with the cube root of how many times MIN_BATCH it is
# (batch 32: 1.59 times; a whole HWU64 fold 5 passes, dev falling back 3.4% against 6.0% with 3).
# The measurements: docs/choosing-the-defaults.md, "Every assistant".
MIN_STEPS, STEPS_PER_INTENT, MIN_EPOCHS, MAX_EPOCHS = 400, 15, 3, 40
# A head started from the intents' prototypes needs fewer steps (HWU64 at 10 per intent, dev:
# 8 per intent as accurate as 15 in two thirds of the time), and no more passes than show
# PROTOTYPE_MAX_SHOWN examples (CLINC150 at 10 per intent: 4 passes as accurate as 8).
PROTOTYPE_STEPS_PER_INTENT, PROTOTYPE_MAX_SHOWN = 8, 6000
# Intents with fewer examples than this share of the largest intent's are repeated in each
# pass up to it, so that a rare intent is not drowned by a common one.
MIN_INTENT_SHARE = 0.1
# The out-of-scope statistics are fitted on at most this many examples of each intent: each
# takes a pass of the served model, and on all of SNIPS (1,870 per intent) 500 gave the same
# dev figures as all of them.
IN_SCOPE_PER_INTENT = 500
# Messages per batch of the pass that finds the intents' prototypes.
PROTOTYPE_BATCH = 64


class UnusableEncoder(ValueError):
    """The encoder's weights do not fit the network its config describes."""


@dataclass
class Example:
    """One training message: its text, intent (None if it has none) and entity annotations
    (dicts with `start`, `end`, `entity` and optionally `role` and `group`)."""

    text: Text
    intent: Optional[Text] = None
    entities: List[Dict[Text, Any]] = field(default_factory=list)


def entity_labels_of(examples: Sequence[Example]) -> List[entity_tags.Label]:
    """The (entity, role, group) labels the examples annotate, in a fixed order."""
    labels = {
        label
        for e in examples
        for label in map(entity_tags.label_of, e.entities)
        if label is not None
    }
    return sorted(labels, key=lambda label: tuple(part or "" for part in label))


@dataclass
class TrainedModel:
    """What prediction needs, all of it in the files (storage.py)."""

    intents: List[Text]
    entity_labels: List[entity_tags.Label]
    # The CRF's tag transition scores, None without one (see entities.best_tags).
    entity_transitions: Optional[np.ndarray]
    tokenizer: TextTokenizer
    predictor: Predictor
    # What scales the confidences of out-of-scope messages down; None leaves them be.
    in_scope: Optional[InScopeModel]
    # What a fine-tune continues from; None once loaded for serving.
    trained_weights: Optional[TrainedWeights] = None

    def confidences(self, outputs: Outputs, lengths: Sequence[int]) -> np.ndarray:
        """The intent confidences `[messages, intents]` of the predictor's outputs for messages
        of `lengths` word pieces: the probabilities, weighted by the nearest training examples
        in the pretrained space, times each message's in-scope factor."""
        if self.in_scope is None:
            return outputs.probabilities
        return self.in_scope.confidences(
            outputs.probabilities, outputs.vectors, outputs.reference_vectors, lengths
        )


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


@dataclass
class FittedNetwork:
    """The trained Keras network before its export, and what it was trained on."""

    model: IntentModel
    tokenizer: TextTokenizer
    token_id_lists: List[List[int]]
    intent_labels: List[int]
    # Passes over the examples of a training from the pretrained encoder: this one's or, for a
    # fine-tune, the one it continues.
    epochs: int


def train(
    examples: Sequence[Example],
    intents: List[Text],
    entity_labels: List[entity_tags.Label],
    pretrained: PretrainedEncoder,
    bert_config: Dict[str, Any],
    config: Dict[Text, Any],
    show_progress: bool,
    previous: Optional[TrainedWeights] = None,
) -> TrainedModel:
    """Trains, exports and fits the out-of-scope statistics, with the component's merged
    config, from the pretrained encoder or, fine-tuning, from `previous`; `UnusableEncoder` if
    the encoder's weights do not fit `bert_config`, `finetune.CannotContinue` if `previous`'s
    do not fit the network."""
    fitted = fit(
        examples, intents, entity_labels, pretrained, bert_config, config, show_progress, previous
    )
    trained_weights = TrainedWeights(
        fitted.model.network.trained_weights(STORED_WEIGHTS_DTYPE),
        intents,
        entity_labels,
        fitted.epochs,
        example_hashes(examples),
    )
    # Training's garbage (Adam's slots, the traced step) handed back before the export makes
    # room for the export's copies of the weights: 70 examples peaked at 1,172 MiB, not 1,214.
    _return_freed_memory()
    precision = config["precision"]
    detect = bool(intents) and config["intent_classification"] and config["out_of_scope_detection"]
    # The out-of-scope factor also reads the encoder as pretrained, in the same model.
    reference = pretrained_weights(pretrained) if detect else None
    started = time.perf_counter()
    predictor = Predictor(
        fitted.model.to_onnx(precision, reference), config["max_seq_len"], precision
    )
    logger.info(
        f"{COMPONENT}: exported the network to ONNX ({precision}) and loaded it in "
        f"{time.perf_counter() - started:.1f} s."
    )
    transitions = fitted.model.network.entity_transitions
    if transitions is not None:
        transitions = transitions.numpy().astype(np.float64)
    # The network's weights are in the ONNX model now; freed, they make room for what follows.
    tokenizer, token_id_lists, intent_labels, epochs = (
        fitted.tokenizer, fitted.token_id_lists, fitted.intent_labels, fitted.epochs
    )
    del fitted, reference
    _return_freed_memory()
    in_scope = None
    if detect:
        in_scope = fit_in_scope(
            predictor, token_id_lists, intent_labels, epochs, config["random_seed"]
        )
    return TrainedModel(
        intents, entity_labels, transitions, tokenizer, predictor, in_scope, trained_weights
    )


def fit(
    examples: Sequence[Example],
    intents: List[Text],
    entity_labels: List[entity_tags.Label],
    pretrained: PretrainedEncoder,
    bert_config: Dict[str, Any],
    config: Dict[Text, Any],
    show_progress: bool,
    previous: Optional[TrainedWeights] = None,
) -> FittedNetwork:
    """Tokenizes, tags and trains the network on the schedule for the examples, or for a
    fine-tune from `previous` on its share of the previous training's passes."""
    classify_intents = bool(intents) and config["intent_classification"]
    tf.keras.utils.set_random_seed(config["random_seed"])
    tokenizer = pretrained.tokenizer()
    network = IntentNetwork(
        bert_config,
        max(1, len(intents)),
        config["dropout"],
        config["pooling"],
        entity_tags.num_tags(entity_labels),
        config["train_word_embeddings"],
        config["entity_crf"],
        config["frozen_layers"],
    )
    model = IntentModel(network, config["max_seq_len"])
    try:
        not_pretrained = pretrained.load_into(model.network)
    except ValueError as error:
        raise UnusableEncoder(str(error)) from error
    if not_pretrained and previous is None:
        logger.warning(
            f"{COMPONENT}: the encoder '{config['model']}' has no value for "
            f"{len(not_pretrained)} weights, which start from random values: "
            f"{', '.join(not_pretrained[:10])}"
        )
    max_seq_len = config["max_seq_len"]
    encodings = [tokenizer.encode(e.text, max_seq_len) for e in examples]
    token_id_lists = [encoding.token_ids for encoding in encodings]
    label_of = {intent: label for label, intent in enumerate(intents)}
    intent_labels = [label_of.get(e.intent, 0) for e in examples]
    if previous is not None:
        continue_from(model.network, previous, intents, entity_labels)
    prototype_head = classify_intents and config["prototype_head"]
    if previous is None and prototype_head:
        model.network.start_heads_from_prototypes(token_id_lists, intent_labels, PROTOTYPE_BATCH)
    tag_lists = _piece_tags(examples, encodings, entity_labels)
    rows = balanced_rows(intent_labels) if classify_intents else np.arange(len(examples))
    if len(rows) > len(examples):
        logger.info(
            f"{COMPONENT}: the examples of intents with fewer than "
            f"{MIN_INTENT_SHARE:.0%} of the largest intent's are repeated, "
            f"{len(rows) - len(examples)} more in each pass."
        )
    if previous is not None:
        # Set epochs Rasa has already multiplied by the fraction; 0 (follow the data) it leaves.
        epochs = config["epochs"] or previous.epochs * float(
            config.get(FINETUNING_EPOCH_FRACTION) or 1.0
        )
        is_new = ~np.isin(example_hashes(examples), previous.example_hashes)
        # The examples the previous training did not see get about as many passes as a full
        # training would give them: a new intent starts from nothing. On HWU64 dev splits at
        # 12 per intent, two new intents' queries 92.5% right against 90.0% without
        # (docs/choosing-the-defaults.md, "Fine-tuning").
        copies = max(1, round(previous.epochs / epochs))
        rows = np.concatenate([rows, np.repeat(np.flatnonzero(is_new), copies - 1)])
        plan = schedule(len(rows), len(intents), epochs, config["batch_size"], prototype_head)
        logger.info(
            f"{COMPONENT}: {finetune_reason(previous, plan, len(examples), is_new, copies, intents)}."
        )
    else:
        plan = schedule(
            len(rows), len(intents), config["epochs"] or None, config["batch_size"], prototype_head
        )
        logger.info(f"{COMPONENT}: {plan.reason}.")
    model.train(
        [token_id_lists[row] for row in rows],
        [intent_labels[row] for row in rows],
        [tag_lists[row] for row in rows],
        intent_loss_weight=1.0 if classify_intents else 0.0,
        entity_loss_weight=config["entity_loss_weight"],
        epochs=plan.epochs,
        batch_size=plan.batch_size,
        learning_rate=config["learning_rate"],
        label_smoothing=config["label_smoothing"],
        seed=config["random_seed"],
        show_progress=show_progress,
    )
    # A fine-tune's model stands for the previous training's passes, for the next fine-tune.
    full_epochs = previous.epochs if previous is not None else plan.epochs
    return FittedNetwork(model, tokenizer, token_id_lists, intent_labels, full_epochs)


def finetune_reason(
    previous: TrainedWeights,
    plan: Schedule,
    num_examples: int,
    is_new: np.ndarray,
    copies: int,
    intents: List[Text],
) -> str:
    """What a fine-tune does, for the training log."""
    new_intents = sorted(set(intents) - set(previous.intents))
    grown = f", new intents: {', '.join(new_intents)}" if new_intents else ""
    repeated = f" (each in {copies} copies a pass)" if copies > 1 and is_new.any() else ""
    return (
        f"fine-tuning from the previous model: {plan.epochs:g} of its {previous.epochs} passes, "
        f"{num_examples} examples, {int(is_new.sum())} new{repeated}{grown}; batch "
        f"{plan.batch_size}, about {plan.steps} steps"
    )


def in_scope_rows(intent_labels: Sequence[int], seed: int) -> List[int]:
    """The examples the out-of-scope statistics are fitted on, in order: at most
    IN_SCOPE_PER_INTENT of each intent, drawn with the seed."""
    labels = np.asarray(intent_labels)
    rng = np.random.default_rng(seed)
    rows = [
        rng.permutation(np.flatnonzero(labels == label))[:IN_SCOPE_PER_INTENT]
        for label in np.unique(labels)
    ]
    return sorted(np.concatenate(rows).tolist()) if rows else []


def fit_in_scope(
    predictor: Predictor,
    token_id_lists: Sequence[Sequence[int]],
    intent_labels: Sequence[int],
    epochs: int,
    seed: int,
) -> Optional[InScopeModel]:
    """The out-of-scope statistics of the training examples (their token ids and intents,
    trained on for `epochs` passes) as `predictor`, the served model, places them, or None
    (warned)."""
    rows = in_scope_rows(intent_labels, seed)
    # The vectors of the served model, whose int8 weights move them a little.
    outputs = predictor.predict([token_id_lists[row] for row in rows])
    in_scope = InScopeModel.fit(
        outputs.vectors,
        outputs.reference_vectors,
        [intent_labels[row] for row in rows],
        [len(token_id_lists[row]) for row in rows],
        intent_passes(intent_labels, epochs),
        seed,
    )
    if in_scope is None:
        logger.warning(
            f"{COMPONENT}: the training examples are too few or too alike to measure how far "
            f"a message lies from them, so the confidences are the plain intent probabilities "
            f"(as with `out_of_scope_detection: false`)."
        )
    return in_scope


def pretrained_weights(pretrained: PretrainedEncoder) -> Mapping[str, Any]:
    """The encoder's weights as pretrained, all its layers, under the network's names."""
    if isinstance(pretrained, HuggingFaceEncoder):
        return pretrained.weights()  # read from the file when asked: no network to hold them
    network = IntentNetwork(pretrained.config, 1, 0.0, "mean")
    network.build_for_any_length()
    pretrained.load_into(network)
    return dict(zip(network.encoder_weight_names(), network.bert.weights))


def _return_freed_memory() -> None:
    """Hands the memory that training freed back to the system, where glibc can: otherwise
    its per-thread arenas keep it, and the out-of-scope fit's arrays come on top."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass


def _piece_tags(
    examples: Sequence[Example],
    encodings: List[Encoding],
    labels: List[entity_tags.Label],
) -> List[Optional[List[int]]]:
    """Each example's entity tags on its token ids; None leaves its entities untrained."""
    if not labels:
        return [None] * len(examples)
    tag_lists: List[Optional[List[int]]] = []
    misaligned = []
    for example, encoding in zip(examples, encodings):
        entities = [e for e in example.entities if entity_tags.label_of(e) is not None]
        tags = entity_tags.word_tags(encoding.words, entities, labels)
        if tags is None:
            misaligned.append(example.text)
            tag_lists.append(None)
        else:
            tag_lists.append(
                entity_tags.piece_tags(encoding.first_pieces, tags, len(encoding.token_ids))
            )
    if misaligned:
        logger.warning(
            f"{COMPONENT}: {len(misaligned)} of {len(examples)} training examples have entity "
            f"annotations that do not start and end on word boundaries (or overlap), for "
            f"example '{misaligned[0]}'. Their intents are trained, their entities not."
        )
    return tag_lists
