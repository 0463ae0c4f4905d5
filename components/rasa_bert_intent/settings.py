"""`BertIntentClassifier`'s settings: each default and why, and the checks of a config."""

from typing import Any, Dict, Text

from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.shared.exceptions import InvalidConfigException
from rasa.utils.tensorflow.constants import RANKING_LENGTH

from rasa_bert_intent import encoder as encoders
from rasa_bert_intent.onnx_export import POOLINGS, PRECISIONS

COMPONENT = "BertIntentClassifier"


def default_config() -> Dict[Text, Any]:
    """Every setting and its default."""
    return {
        # Predict `intent` and `intent_ranking`, as DIET's setting of the same name.
        "intent_classification": True,
        # Weigh the intents by the message's nearest training examples in the pretrained
        # encoder's space, and scale the confidences down for messages far from every intent's
        # training examples (components/rasa_bert_intent/in_scope.py), so that
        # FallbackClassifier's threshold of 0.5 catches out-of-scope messages; false gives the
        # plain softmax probabilities, which are near 1 for most messages of any kind.
        "out_of_scope_detection": True,
        # Predict entities, trained on the NLU data's annotations, as DIET's setting of the
        # same name. Data without annotations trains no tagging head and predicts none.
        "entity_recognition": True,
        # The encoder: the embedded all-MiniLM-L6-v2, or a path to a folder holding a
        # Hugging Face BERT model (config.json, vocab.txt, and model.safetensors or
        # pytorch_model.bin, whole or sharded).
        "model": encoders.DEFAULT_MODEL,
        # Use at most this many of the encoder's transformer layers, from the bottom; null
        # uses all. Fewer train and predict faster: on the SNIPS dev split 4 of
        # all-MiniLM-L6-v2's 6 were as accurate as all 6 (docs/choosing-the-defaults.md).
        "num_layers": 4,
        # Keep the embeddings and this many bottom layers as pretrained: they need no
        # gradients, and the served model computes them once for the network and for the
        # pretrained encoder that the out-of-scope factor reads. 0 trains them all. With
        # `prototype_head` and all six layers, the few-shot candidate of
        # docs/choosing-the-defaults.md ("Few examples"), not the default: on test draws it
        # gained on HWU64 at 10 per intent and lost on SNIPS.
        "frozen_layers": 0,
        # Start the intent head from the intents' prototypes (the means of their examples'
        # sentence vectors) instead of at random, and train it for fewer steps (8 per intent
        # instead of 15, at most 6,000 examples shown).
        "prototype_head": False,
        # Word pieces per message including [CLS] and [SEP]; longer messages are cut.
        # SNIPS' longest query has 41.
        "max_seq_len": 64,
        # Passes over the training data; 0 follows the data: enough passes for about 400
        # optimizer updates (15 per intent where that is more, more with batches over 8), from
        # 3 (full SNIPS) to 40 (a few examples per intent); the training log says what it
        # chose. The old fixed 2 passes gave a 70-example assistant 6 updates (training.py,
        # docs/choosing-the-defaults.md). A number, not null: `rasa train --finetune` multiplies
        # it by its `--epoch-fraction` (0 stays 0: the fraction then applies to the passes the
        # previous training chose). null is read as 0 for configs written before.
        "epochs": 0,
        # Messages per training batch; null follows the data's size: 8 for up to 1,023
        # examples, 16 up to 2,047, 32 from there on.
        "batch_size": None,
        # Adam's initial learning rate, falling linearly to 0 over training. Chosen on the
        # SNIPS dev split from 5e-5, 1e-4, 2e-4 and 3e-4.
        "learning_rate": 3e-4,
        # Share of the target probability spread evenly over all intents in training;
        # 0 trains on one-hot targets.
        "label_smoothing": 0.0,
        # Tag entities with a linear-chain CRF (learned tag-to-tag transition scores, as
        # DIET does) rather than each word alone; both decode to valid BIO sequences. On the
        # SNIPS dev split the CRF was 0.1 slot F1 ahead, within a seed's noise, and trained
        # about 15% slower, which the 4-minute budget cannot spare.
        "entity_crf": False,
        # Weight of the entity tagging loss beside the intent loss. On the SNIPS dev split 3.0
        # gave 0.4 more slot F1 than 1.0 (mean of 2 seeds) and as many intent errors as the
        # noise allows; 0 ignores entities, as `entity_recognition: false` does
        # (docs/choosing-the-defaults.md).
        "entity_loss_weight": 3.0,
        # Fine-tune the word embedding table too (not with `frozen_layers`). Keeping the
        # pretrained one trains about 20% faster (Adam updates all its 30,522 rows every step)
        # and was as accurate on the SNIPS dev split.
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
        # Weights of the served model: "int8" (dynamically quantised) or "fp32". int8 runs a
        # message about twice as fast, quarters the model file, and on the SNIPS dev split was
        # as accurate as fp32 (docs/choosing-the-defaults.md; speed: docs/speed.md); fp32 is the
        # network exactly as trained.
        "precision": "int8",
        # Intents in `intent_ranking`; 0 ranks them all.
        RANKING_LENGTH: LABEL_RANKING_LENGTH,
    }


# Whole-number settings and their smallest values (None: any). max_seq_len needs room for
# [CLS], one word piece and [SEP].
_WHOLE_NUMBER_MINIMUMS = {
    "max_seq_len": 3,
    RANKING_LENGTH: 0,
    "random_seed": None,
    "frozen_layers": 0,
}
# Whole-number settings that may also be null, and their smallest values.
_OPTIONAL_WHOLE_NUMBER_MINIMUMS = {"epochs": 0, "batch_size": 1, "num_layers": 1}
_BOOLEANS = (
    "intent_classification",
    "out_of_scope_detection",
    "entity_recognition",
    "entity_crf",
    "train_word_embeddings",
    "prototype_head",
)


def invalid(config: Dict[Text, Any], setting: str, problem: str) -> InvalidConfigException:
    """The error for one bad setting, naming the component, the setting and its value."""
    return InvalidConfigException(
        f"{COMPONENT}: the setting '{setting}' {problem} (it is {config.get(setting)!r})."
    )


def check_config(config: Dict[Text, Any]) -> None:
    """Raises `InvalidConfigException` naming the first bad setting of a merged config."""

    def is_number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def is_whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    for setting, minimum in _WHOLE_NUMBER_MINIMUMS.items():
        value = config.get(setting)
        if not is_whole(value) or (minimum is not None and value < minimum):
            at_least = "" if minimum is None else f" of at least {minimum}"
            raise invalid(config, setting, f"must be a whole number{at_least}")
    for setting, minimum in _OPTIONAL_WHOLE_NUMBER_MINIMUMS.items():
        value = config.get(setting)
        if value is not None and (not is_whole(value) or value < minimum):
            raise invalid(config, setting, f"must be a whole number of at least {minimum} or null")
    if not is_number(config.get("learning_rate")) or not 0 < config["learning_rate"] < 1:
        raise invalid(config, "learning_rate", "must be a number between 0 and 1")
    if not is_number(config.get("entity_loss_weight")) or config["entity_loss_weight"] < 0:
        raise invalid(config, "entity_loss_weight", "must be a number of at least 0")
    for setting in ("dropout", "label_smoothing"):
        if not is_number(config.get(setting)) or not 0 <= config[setting] < 1:
            raise invalid(config, setting, "must be a number from 0 up to, not including, 1")
    if config.get("lower_case") not in (None, True, False):
        raise invalid(config, "lower_case", "must be true, false or null (follow the model)")
    for setting in _BOOLEANS:
        if not isinstance(config.get(setting), bool):
            raise invalid(config, setting, "must be true or false")
    if not config["intent_classification"] and not config["entity_recognition"]:
        raise invalid(
            config,
            "intent_classification",
            "and 'entity_recognition' are both false, so the component would learn nothing: "
            "set one of them to true, or remove the component from the pipeline",
        )
    if config["train_word_embeddings"] and config["frozen_layers"] > 0:
        raise invalid(
            config,
            "train_word_embeddings",
            "is true while 'frozen_layers' keeps the embeddings as pretrained: set "
            "'frozen_layers: 0' to train them",
        )
    if config.get("precision") not in PRECISIONS:
        raise invalid(config, "precision", f"must be one of: {', '.join(PRECISIONS)}")
    if config.get("pooling") not in POOLINGS:
        raise invalid(config, "pooling", f"must be one of: {', '.join(POOLINGS)}")
    if not isinstance(config.get("model"), str) or not config["model"].strip():
        raise invalid(
            config,
            "model",
            f"must be '{encoders.DEFAULT_MODEL}' or the path to a BERT model folder",
        )


def predicts_entities(config: Dict[Text, Any]) -> bool:
    """Whether a config trains and predicts entities."""
    return config["entity_recognition"] and config["entity_loss_weight"] > 0
