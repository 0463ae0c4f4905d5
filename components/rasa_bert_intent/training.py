"""Training, from examples to a served model: tokenize, tag, fit the network on its schedule
(schedule.py, or finetune.py's), export it and fit the out-of-scope statistics (export.py). No Rasa
objects."""

import ctypes
import gc
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Text, Tuple

import numpy as np
import tensorflow as tf

from rasa_bert_intent import entities as entity_tags
from rasa_bert_intent import export, finetune
from rasa_bert_intent.finetune import (
    FinetuneState,
    continue_from,
    continued_schedule,
    example_hashes,
)
from rasa_bert_intent.network import IntentNetwork
from rasa_bert_intent.predictor import ServedModel
from rasa_bert_intent.pretrained.encoder import HuggingFaceEncoder, PretrainedEncoder
from rasa_bert_intent.pretrained.tokenization import Encoding, TextTokenizer
from rasa_bert_intent.responses import LabelGroups
from rasa_bert_intent.schedule import MIN_INTENT_SHARE, Schedule, balanced_rows
from rasa_bert_intent.schedule import schedule as fresh_schedule
from rasa_bert_intent.settings import COMPONENT, Settings
from rasa_bert_intent.trainer import NetworkTrainer

logger = logging.getLogger(__name__)

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


@dataclass
class TrainedNetwork:
    """The trained Keras network before its export, and what it was trained on."""

    network: IntentNetwork
    tokenizer: TextTokenizer
    token_id_lists: List[List[int]]
    intent_labels: List[int]
    # Passes over the examples of a training from the pretrained encoder: this one's or, for a
    # fine-tune, the one it continues.
    epochs: float


def train(
    examples: Sequence[Example],
    intents: List[Text],
    entity_labels: List[entity_tags.Label],
    pretrained: PretrainedEncoder,
    bert_config: Dict[str, Any],
    settings: Settings,
    *,
    show_progress: bool,
    previous: Optional[FinetuneState] = None,
) -> ServedModel:
    """Trains, exports and fits the out-of-scope statistics, from the pretrained encoder (its
    architecture cut to `bert_config`) or, fine-tuning, from `previous`; `UnusableEncoder` if
    the encoder's weights do not fit `bert_config`, `finetune.CannotContinue` if `previous`'s
    do not fit the network."""
    trained = fit(
        examples, intents, entity_labels, pretrained, bert_config, settings,
        show_progress=show_progress, previous=previous,
    )
    finetune_state = FinetuneState(
        trained.network.trained_weights(),
        intents,
        entity_labels,
        trained.epochs,
        example_hashes(examples),
    )
    # Training's garbage (Adam's slots, the traced step) handed back before the export makes
    # room for the export's copies of the weights.
    _return_freed_memory()
    detect = bool(intents) and settings.detects_out_of_scope
    # A fine-tune reads the pretrained vectors of the examples the previous model kept.
    known = previous.reference_vectors if previous is not None and detect else {}
    reference = pretrained_weights(pretrained) if detect else None
    predictor, network_alone = export.predictors(trained.network, reference, settings, bool(known))
    transitions = trained.network.entity_transitions
    if transitions is not None:
        transitions = transitions.numpy().astype(np.float64)
    # The network's weights are in the ONNX model now; freed, they make room for what follows.
    tokenizer, token_id_lists, intent_labels, epochs = (
        trained.tokenizer, trained.token_id_lists, trained.intent_labels, trained.epochs
    )
    del trained
    _return_freed_memory()
    in_scope = None
    if detect:
        in_scope = export.in_scope(
            predictor, token_id_lists, intent_labels, epochs, settings, known, network_alone
        )
    return ServedModel(
        intents, entity_labels, transitions, tokenizer, predictor, in_scope, finetune_state
    )


def fit(
    examples: Sequence[Example],
    intents: List[Text],
    entity_labels: List[entity_tags.Label],
    pretrained: PretrainedEncoder,
    bert_config: Dict[str, Any],
    settings: Settings,
    *,
    show_progress: bool,
    previous: Optional[FinetuneState] = None,
) -> TrainedNetwork:
    """Tokenizes, tags and trains the network on the schedule for the examples, or for a
    fine-tune from `previous` on its share of the previous training's passes."""
    classify_intents = bool(intents) and settings.intent_classification
    network = _network(pretrained, bert_config, settings, len(intents), entity_labels, previous)
    tokenizer = pretrained.tokenizer()
    encodings = [tokenizer.encode(e.text, settings.max_seq_len) for e in examples]
    token_id_lists = [encoding.token_ids for encoding in encodings]
    label_of = {intent: label for label, intent in enumerate(intents)}
    intent_labels = [label_of.get(e.intent, 0) for e in examples]
    if previous is not None:
        continue_from(network, previous, intents, entity_labels)
    held = finetune.held_layers(bert_config["num_hidden_layers"]) if previous is not None else 0
    network.hold(held)
    prototype_head = classify_intents and settings.prototype_head
    if previous is None and prototype_head:
        network.start_heads_from_prototypes(token_id_lists, intent_labels, PROTOTYPE_BATCH)
    tag_lists = _training_tags(examples, encodings, entity_labels)
    rows, plan = _passes(
        examples, intents, intent_labels, settings, previous, classify_intents, prototype_head,
        held,
    )
    NetworkTrainer(network, settings.max_seq_len).train(
        [token_id_lists[row] for row in rows],
        [intent_labels[row] for row in rows],
        [tag_lists[row] for row in rows],
        intent_loss_weight=1.0 if classify_intents else 0.0,
        entity_loss_weight=settings.entity_loss_weight,
        epochs=plan.epochs,
        batch_size=plan.batch_size,
        learning_rate=settings.learning_rate,
        label_smoothing=settings.label_smoothing,
        seed=settings.random_seed,
        show_progress=show_progress,
    )
    network.hold(0)
    # A fine-tune's model stands for the previous training's passes, for the next fine-tune.
    full_epochs = previous.epochs if previous is not None else plan.epochs
    return TrainedNetwork(network, tokenizer, token_id_lists, intent_labels, full_epochs)


def _network(
    pretrained: PretrainedEncoder,
    bert_config: Dict[str, Any],
    settings: Settings,
    num_intents: int,
    entity_labels: List[entity_tags.Label],
    previous: Optional[FinetuneState],
) -> IntentNetwork:
    """The network, seeded, its encoder as pretrained and its heads fresh."""
    tf.keras.utils.set_random_seed(settings.random_seed)
    network = IntentNetwork(
        bert_config,
        max(1, num_intents),
        settings.dropout,
        settings.pooling,
        entity_tags.num_tags(entity_labels),
        settings.train_word_embeddings,
        settings.entity_crf,
        settings.frozen_layers,
    )
    network.build_for_any_length()
    try:
        not_pretrained = pretrained.load_into(network)
    except ValueError as error:
        raise UnusableEncoder(str(error)) from error
    if not_pretrained and previous is None:
        logger.warning(
            f"{COMPONENT}: the encoder '{settings.model}' has no value for "
            f"{len(not_pretrained)} weights, which start from random values: "
            f"{', '.join(not_pretrained[:10])}"
        )
    return network


def _passes(
    examples: Sequence[Example],
    intents: List[Text],
    intent_labels: List[int],
    settings: Settings,
    previous: Optional[FinetuneState],
    classify_intents: bool,
    prototype_head: bool,
    held_layers: int,
) -> Tuple[np.ndarray, Schedule]:
    """The rows of each training pass and the schedule, logged."""
    rows = balanced_rows(intent_labels) if classify_intents else np.arange(len(examples))
    if len(rows) > len(examples):
        logger.info(
            f"{COMPONENT}: the examples of intents with fewer than "
            f"{MIN_INTENT_SHARE:.0%} of the largest intent's are repeated, "
            f"{len(rows) - len(examples)} more in each pass."
        )
    if previous is not None:
        rows, plan = continued_schedule(
            previous,
            rows,
            example_hashes(examples),
            intents,
            finetune.of_new_labels(examples, previous),
            epochs=settings.epochs,
            epoch_fraction=settings.finetuning_epoch_fraction,
            batch_size=settings.batch_size,
            prototype_head=prototype_head,
            held_layers=held_layers,
        )
    else:
        # The intents Rasa sees set the steps: a retrieval intent's response keys took no more
        # (docs/results-history.md, "Retrieval intents answered by the component").
        plan = fresh_schedule(
            len(rows),
            len(LabelGroups(intents).intents),
            settings.epochs or None,
            settings.batch_size,
            prototype_head,
        )
    logger.info(f"{COMPONENT}: {plan.reason}.")
    return rows, plan


def _training_tags(
    examples: Sequence[Example],
    encodings: Sequence[Encoding],
    labels: List[entity_tags.Label],
) -> List[Optional[List[int]]]:
    """Each example's entity tags on its token ids, misaligned annotations warned of."""
    tag_lists, misaligned = entity_tags.training_tags(
        [e.entities for e in examples], encodings, labels
    )
    if misaligned:
        logger.warning(
            f"{COMPONENT}: {len(misaligned)} of {len(examples)} training examples have entity "
            f"annotations that do not start and end on word boundaries (or overlap), for "
            f"example '{examples[misaligned[0]].text}'. Their intents are trained, their "
            f"entities not."
        )
    return tag_lists


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
