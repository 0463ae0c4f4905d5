"""`BertIntentClassifier`'s settings: each default and why, and `Settings`, a config checked once
(and against the encoder it names, when that is read).

The measurements behind the defaults are in docs/choosing-the-defaults.md.
"""

import dataclasses
from typing import Any, Dict, Optional, Text, Tuple

from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.shared.exceptions import InvalidConfigException
from rasa.utils.tensorflow.constants import RANKING_LENGTH

from rasa_bert_intent.network import POOLINGS
from rasa_bert_intent.onnx_export import PRECISIONS
from rasa_bert_intent.pretrained import encoder as encoders
from rasa_bert_intent.pretrained.encoder import DEFAULT_MODEL

COMPONENT = "BertIntentClassifier"
# The share of the previous training's passes that `rasa train --finetune --epoch-fraction`
# asks for: Rasa puts it into the config of the components it fine-tunes.
FINETUNING_EPOCH_FRACTION = "finetuning_epoch_fraction"


def default_config() -> Dict[Text, Any]:
    """Every setting and its default."""
    return {
        # Predict `intent` and `intent_ranking`, as DIET's setting of the same name.
        "intent_classification": True,
        # Weigh the intents by the nearest training examples and scale the confidences down far
        # from them (in_scope.py), so that FallbackClassifier's 0.5 catches out-of-scope
        # messages; false gives the plain softmax (docs/out-of-scope.md).
        "out_of_scope_detection": True,
        # Predict entities, trained on the NLU data's annotations, as DIET's setting of the
        # same name. Data without annotations trains no tagging head and predicts none.
        "entity_recognition": True,
        # The encoder: the embedded all-MiniLM-L6-v2, or a path to a Hugging Face folder
        # (config.json, vocab.txt or tokenizer.json, weights) or a Google BERT checkpoint.
        "model": DEFAULT_MODEL,
        # Use at most this many of the encoder's layers, from the bottom; null uses all. 4 of 6
        # were as accurate as 6 on the SNIPS dev split, and faster.
        "num_layers": 4,
        # Keep the embeddings and this many bottom layers as pretrained; 0 trains them all.
        # With `prototype_head`, the few-shot candidate ("Few examples"), not the default.
        "frozen_layers": 0,
        # Start the intent head from the intents' prototypes (means of their sentence vectors)
        # instead of at random, with a shorter schedule (schedule.py).
        "prototype_head": False,
        # Word pieces per message with [CLS] and [SEP] (SNIPS' longest: 41); longer ones are cut.
        "max_seq_len": 64,
        # Passes over the training data; 0 follows the data (schedule.py; the training log
        # says what it chose). A number, not null: `rasa train --finetune` multiplies it by its
        # `--epoch-fraction` (0 stays 0: the fraction then applies to the previous passes).
        "epochs": 0,
        # Messages per training batch; null follows the data's size (8 to 32).
        "batch_size": None,
        # Adam's initial learning rate, falling linearly to 0 over training.
        "learning_rate": 3e-4,
        # Share of the target probability spread evenly over all intents; 0: one-hot targets.
        "label_smoothing": 0.0,
        # Tag entities with a linear-chain CRF, as DIET does, rather than each word alone:
        # as accurate on the SNIPS dev split and about 15% slower.
        "entity_crf": False,
        # Weight of the entity tagging loss beside the intent loss; 0 ignores entities.
        "entity_loss_weight": 3.0,
        # Fine-tune the word embedding table too (not with `frozen_layers`): as accurate and
        # about 20% slower than keeping the pretrained one.
        "train_word_embeddings": False,
        # Dropout rate before and after the dense tanh layer, and before the tagging head.
        "dropout": 0.1,
        # Sentence vector: "mean" over the real tokens, or the "cls" token's vector.
        "pooling": "mean",
        # Lower-case the text before tokenizing: null follows the encoder (uncased models
        # lower-case, cased ones keep case); true or false must agree with the encoder.
        "lower_case": None,
        # Seeds the heads' initial weights, dropout and the order of training batches.
        "random_seed": 42,
        # Weights of the served model: "int8" (dynamically quantised: twice as fast, a quarter
        # of the file, as accurate) or "fp32", the network exactly as trained.
        "precision": "int8",
        # Intents in `intent_ranking`; 0 ranks them all.
        RANKING_LENGTH: LABEL_RANKING_LENGTH,
    }


@dataclasses.dataclass(frozen=True)
class Settings:
    """A checked config, one field per setting of `default_config`."""

    intent_classification: bool
    out_of_scope_detection: bool
    entity_recognition: bool
    model: str
    num_layers: Optional[int]
    frozen_layers: int
    prototype_head: bool
    max_seq_len: int
    epochs: int  # 0 follows the data
    batch_size: Optional[int]
    learning_rate: float
    label_smoothing: float
    entity_crf: bool
    entity_loss_weight: float
    train_word_embeddings: bool
    dropout: float
    pooling: str
    lower_case: Optional[bool]
    random_seed: int
    precision: str
    ranking_length: int
    # Set by Rasa for `rasa train --finetune --epoch-fraction`; 1 otherwise (0 reads as 1).
    finetuning_epoch_fraction: float = 1.0

    @classmethod
    def from_config(cls, config: Dict[Text, Any]) -> "Settings":
        """The settings of a component's config, defaults filled in; `InvalidConfigException`
        naming the first bad setting."""
        merged = {**default_config(), **config}
        if merged["epochs"] is None:  # configs written before 0 meant "follow the data"
            merged["epochs"] = 0
        _check(merged)
        fraction = merged.get(FINETUNING_EPOCH_FRACTION) or 1.0
        names = {field.name for field in dataclasses.fields(cls)} - {FINETUNING_EPOCH_FRACTION}
        return cls(
            **{name: merged[name] for name in names}, finetuning_epoch_fraction=float(fraction)
        )

    @property
    def predicts_entities(self) -> bool:
        """Whether the settings train and predict entities."""
        return self.entity_recognition and self.entity_loss_weight > 0

    @property
    def detects_out_of_scope(self) -> bool:
        """Whether intents' confidences carry the in-scope factor."""
        return self.intent_classification and self.out_of_scope_detection

    def encoder(self) -> Tuple[encoders.PretrainedEncoder, Dict[str, Any]]:
        """The encoder `model` names, checked against the settings, and its architecture cut
        to `num_layers`."""
        try:
            pretrained = encoders.load_pretrained(self.model)
        except encoders.EncoderNotFound as error:
            raise self.invalid("model", f"names no encoder: {error}")
        if self.max_seq_len > pretrained.max_position_embeddings:
            raise self.invalid(
                "max_seq_len",
                f"must be at most the encoder's {pretrained.max_position_embeddings} positions",
            )
        if self.lower_case is not None and self.lower_case != pretrained.do_lower_case:
            kind = "an uncased" if pretrained.do_lower_case else "a cased"
            raise self.invalid(
                "lower_case",
                f"disagrees with the encoder '{self.model}', {kind} model: "
                f"set it to {str(pretrained.do_lower_case).lower()} or leave it out",
            )
        bert_config = dict(pretrained.config)
        if self.num_layers is not None:
            bert_config["num_hidden_layers"] = min(self.num_layers, bert_config["num_hidden_layers"])
        if self.frozen_layers >= bert_config["num_hidden_layers"]:
            raise self.invalid(
                "frozen_layers",
                f"must be fewer than the {bert_config['num_hidden_layers']} layers trained "
                f"('num_layers' and the encoder's own)",
            )
        return pretrained, bert_config

    def invalid(self, setting: str, problem: str) -> InvalidConfigException:
        """The error for one of these settings that the encoder or the model does not allow."""
        return invalid(setting, getattr(self, setting), problem)


def invalid(setting: str, value: Any, problem: str) -> InvalidConfigException:
    """The error for one bad setting, naming the component, the setting and its value."""
    return InvalidConfigException(
        f"{COMPONENT}: the setting '{setting}' {problem} (it is {value!r})."
    )


# Whole-number settings and their smallest values (None: any). max_seq_len needs room for
# [CLS], one word piece and [SEP].
_WHOLE_NUMBER_MINIMUMS = {
    "max_seq_len": 3,
    RANKING_LENGTH: 0,
    "random_seed": None,
    "frozen_layers": 0,
    "epochs": 0,
}
# Whole-number settings that may also be null, and their smallest values.
_OPTIONAL_WHOLE_NUMBER_MINIMUMS = {"batch_size": 1, "num_layers": 1}
_BOOLEANS = (
    "intent_classification",
    "out_of_scope_detection",
    "entity_recognition",
    "entity_crf",
    "train_word_embeddings",
    "prototype_head",
)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(config: Dict[Text, Any]) -> None:
    """Raises `InvalidConfigException` naming the first bad setting of a merged config."""

    def refuse(setting: str, problem: str) -> InvalidConfigException:
        return invalid(setting, config.get(setting), problem)

    for setting, minimum in _WHOLE_NUMBER_MINIMUMS.items():
        value = config.get(setting)
        if not _is_whole(value) or (minimum is not None and value < minimum):
            at_least = "" if minimum is None else f" of at least {minimum}"
            raise refuse(setting, f"must be a whole number{at_least}")
    for setting, minimum in _OPTIONAL_WHOLE_NUMBER_MINIMUMS.items():
        value = config.get(setting)
        if value is not None and (not _is_whole(value) or value < minimum):
            raise refuse(setting, f"must be a whole number of at least {minimum} or null")
    if not _is_number(config.get("learning_rate")) or not 0 < config["learning_rate"] < 1:
        raise refuse("learning_rate", "must be a number between 0 and 1")
    if not _is_number(config.get("entity_loss_weight")) or config["entity_loss_weight"] < 0:
        raise refuse("entity_loss_weight", "must be a number of at least 0")
    for setting in ("dropout", "label_smoothing"):
        if not _is_number(config.get(setting)) or not 0 <= config[setting] < 1:
            raise refuse(setting, "must be a number from 0 up to, not including, 1")
    if config.get("lower_case") not in (None, True, False):
        raise refuse("lower_case", "must be true, false or null (follow the model)")
    for setting in _BOOLEANS:
        if not isinstance(config.get(setting), bool):
            raise refuse(setting, "must be true or false")
    if not config["intent_classification"] and not config["entity_recognition"]:
        raise refuse(
            "intent_classification",
            "and 'entity_recognition' are both false, so the component would learn nothing: "
            "set one of them to true, or remove the component from the pipeline",
        )
    if config["train_word_embeddings"] and config["frozen_layers"] > 0:
        raise refuse(
            "train_word_embeddings",
            "is true while 'frozen_layers' keeps the embeddings as pretrained: set "
            "'frozen_layers: 0' to train them",
        )
    if config.get("precision") not in PRECISIONS:
        raise refuse("precision", f"must be one of: {', '.join(PRECISIONS)}")
    if config.get("pooling") not in POOLINGS:
        raise refuse("pooling", f"must be one of: {', '.join(POOLINGS)}")
    if not isinstance(config.get("model"), str) or not config["model"].strip():
        raise refuse("model", f"must be '{DEFAULT_MODEL}' or the path to a BERT model folder")
    fraction = config.get(FINETUNING_EPOCH_FRACTION)
    if fraction is not None and (not _is_number(fraction) or fraction < 0):
        raise refuse(FINETUNING_EPOCH_FRACTION, "must be a number of at least 0")
