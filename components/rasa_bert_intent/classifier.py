"""`BertIntentClassifier`: a fine-tuned BERT intent classifier as a Rasa 3 graph component."""

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple

import numpy as np
import tensorflow as tf

import rasa.shared.utils.io
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.exceptions import InvalidConfigException, RasaException
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    INTENT,
    INTENT_RANKING_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import RANKING_LENGTH

from rasa_bert_intent import encoder as encoders
from rasa_bert_intent.model import POOLINGS, IntentModel, IntentNetwork
from rasa_bert_intent.predictor import IntentPredictor
from rasa_bert_intent.tokenization import WordPieceTokenizer

logger = logging.getLogger(__name__)

# Files the trained component keeps in Rasa's model storage.
MODEL_FILE = "intent_model.tflite"
VOCAB_FILE = "vocab.txt"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 2  # raised whenever the files above change incompatibly

# Whole-number settings and their smallest values (None: any). max_seq_len needs room for
# [CLS], one word piece and [SEP].
_WHOLE_NUMBER_MINIMUMS = {
    "max_seq_len": 3,
    "epochs": 1,
    "batch_size": 1,
    RANKING_LENGTH: 0,
    "random_seed": None,
}


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class BertIntentClassifier(GraphComponent, IntentClassifier):
    """Intent classifier that fine-tunes a BERT encoder on the raw message text."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config (see parent class for full docstring)."""
        return {
            # The encoder: the embedded all-MiniLM-L6-v2, or a path to a folder holding a
            # Hugging Face BERT model (config.json, model.safetensors, vocab.txt).
            "model": encoders.DEFAULT_MODEL,
            # Use at most this many of the encoder's transformer layers, from the bottom; null
            # uses all. Fewer train and predict faster: on the SNIPS dev split 4 of
            # all-MiniLM-L6-v2's 6 were as accurate as all 6 (benchmark/dev_eval.py).
            "num_layers": 4,
            # Word pieces per message including [CLS] and [SEP]; longer messages are cut.
            # SNIPS' longest query has 41.
            "max_seq_len": 64,
            # Passes over the training data; 2 keep SNIPS training within 5 minutes on 2 CPU cores.
            "epochs": 2,
            # Messages per training batch.
            "batch_size": 32,
            # Adam's initial learning rate, falling linearly to 0 over training. Chosen on the
            # SNIPS dev split from 5e-5, 1e-4, 2e-4 and 3e-4.
            "learning_rate": 3e-4,
            # Share of the target probability spread evenly over all intents in training;
            # 0 trains on one-hot targets.
            "label_smoothing": 0.0,
            # Weight of a second training target, tagging each word piece with the entity
            # annotated on it in the NLU data; 0 ignores entities. Only intents are predicted.
            # 1.0 (the joint intent and slot models' sum of losses) lowered the SNIPS dev loss.
            "entity_loss_weight": 1.0,
            # Fine-tune the word embedding table too. Keeping the pretrained one trains about
            # 20% faster (Adam updates all its 30,522 rows every step) and was as accurate on
            # the SNIPS dev split.
            "train_word_embeddings": False,
            # Dropout rate before and after the dense tanh layer, and before the tagging head.
            "dropout": 0.1,
            # Sentence vector: "mean" over the real tokens, or the "cls" token's vector.
            "pooling": "mean",
            # Lower-case the text before tokenizing: null follows the encoder (uncased models
            # lower-case, cased ones keep case); true or false must agree with the encoder.
            "lower_case": None,
            # Seeds the head's initial weights, dropout and the order of training batches.
            "random_seed": 42,
            # Intents in `intent_ranking`; 0 ranks them all.
            RANKING_LENGTH: LABEL_RANKING_LENGTH,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        """Any extra python dependencies required for this component to run."""
        return ["tensorflow", "safetensors"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Fingerprints the encoder's files and bert-for-tf2, which Rasa cannot see."""
        config = {**cls.get_default_config(), **config}  # Rasa passes it unmerged at times
        cls._check_config(config)
        try:
            folder = encoders.model_folder(config["model"])
        except encoders.EncoderNotFound as error:
            raise cls._invalid(config, "model", f"names no encoder: {error}")
        return f"{encoders.fingerprint(folder)}-bert-for-tf2-{encoders.BERT_FOR_TF2_VERSION}"

    def __init__(
        self,
        config: Dict[Text, Any],
        name: Text,
        model_storage: ModelStorage,
        resource: Resource,
    ) -> None:
        """Checks the config; `train` or `load` provide the intents, tokenizer and model."""
        self.name = name
        self.config = {**self.get_default_config(), **config}
        self._check_config(self.config)
        self._model_storage = model_storage
        self._resource = resource
        self.intents: List[Text] = []
        self.tokenizer: Optional[WordPieceTokenizer] = None
        self.predictor: Optional[IntentPredictor] = None

    @classmethod
    def _check_config(cls, config: Dict[Text, Any]) -> None:
        def is_number(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        def is_whole(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        for setting, minimum in _WHOLE_NUMBER_MINIMUMS.items():
            value = config.get(setting)
            if not is_whole(value) or (minimum is not None and value < minimum):
                at_least = "" if minimum is None else f" of at least {minimum}"
                raise cls._invalid(config, setting, f"must be a whole number{at_least}")
        num_layers = config.get("num_layers")
        if num_layers is not None and (not is_whole(num_layers) or num_layers < 1):
            raise cls._invalid(config, "num_layers", "must be a whole number of at least 1 or null")
        if not is_number(config.get("learning_rate")) or not 0 < config["learning_rate"] < 1:
            raise cls._invalid(config, "learning_rate", "must be a number between 0 and 1")
        if not is_number(config.get("entity_loss_weight")) or config["entity_loss_weight"] < 0:
            raise cls._invalid(config, "entity_loss_weight", "must be a number of at least 0")
        for setting in ("dropout", "label_smoothing"):
            if not is_number(config.get(setting)) or not 0 <= config[setting] < 1:
                raise cls._invalid(
                    config, setting, "must be a number from 0 up to, not including, 1"
                )
        if config.get("lower_case") not in (None, True, False):
            raise cls._invalid(
                config, "lower_case", "must be true, false or null (follow the model)"
            )
        if not isinstance(config.get("train_word_embeddings"), bool):
            raise cls._invalid(config, "train_word_embeddings", "must be true or false")
        if config.get("pooling") not in POOLINGS:
            raise cls._invalid(config, "pooling", f"must be one of: {', '.join(POOLINGS)}")
        if not isinstance(config.get("model"), str) or not config["model"].strip():
            raise cls._invalid(
                config,
                "model",
                f"must be '{encoders.DEFAULT_MODEL}' or the path to a BERT model folder",
            )

    @classmethod
    def _invalid(
        cls, config: Dict[Text, Any], setting: str, problem: str
    ) -> InvalidConfigException:
        return InvalidConfigException(
            f"{cls.__name__}: the setting '{setting}' {problem} (it is {config.get(setting)!r})."
        )

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "BertIntentClassifier":
        """Creates a new untrained component (see parent class for full docstring)."""
        return cls(config, execution_context.node_name, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Fine-tunes the encoder and the head on the intent examples."""
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        if not examples:
            logger.warning(
                f"{self.__class__.__name__}: the training data has no intent examples, so the "
                f"classifier is not trained and predicts no intent. Add examples to your NLU data."
            )
            return self._resource
        intents = sorted({e.get(INTENT) for e in examples})
        if len(intents) < 2:
            raise RasaException(
                f"{self.__class__.__name__}: the training data has examples of one intent only "
                f"('{intents[0]}'); a classifier needs at least two intents to tell apart. Add "
                f"examples of another intent, or remove {self.__class__.__name__} from the pipeline."
            )

        try:
            pretrained = encoders.load_pretrained(self.config["model"])
        except encoders.EncoderNotFound as error:
            raise self._invalid(self.config, "model", f"names no encoder: {error}")
        max_seq_len = self.config["max_seq_len"]
        if max_seq_len > pretrained.max_position_embeddings:
            raise self._invalid(
                self.config,
                "max_seq_len",
                f"must be at most the encoder's {pretrained.max_position_embeddings} positions",
            )

        bert_config = dict(pretrained.config)
        if self.config["num_layers"] is not None:
            bert_config["num_hidden_layers"] = min(
                self.config["num_layers"], bert_config["num_hidden_layers"]
            )

        lower_case = self.config["lower_case"]
        if lower_case is not None and lower_case != pretrained.do_lower_case:
            kind = "an uncased" if pretrained.do_lower_case else "a cased"
            raise self._invalid(
                self.config,
                "lower_case",
                f"disagrees with the encoder '{self.config['model']}', {kind} model: "
                f"set it to {str(pretrained.do_lower_case).lower()} or leave it out",
            )
        tf.keras.utils.set_random_seed(self.config["random_seed"])
        self.intents = intents
        self.tokenizer = WordPieceTokenizer(pretrained.vocab_file, pretrained.do_lower_case)
        entity_tag_lists, num_entity_tags = self._entity_tags(examples, max_seq_len)
        network = IntentNetwork(
            bert_config,
            len(self.intents),
            self.config["dropout"],
            self.config["pooling"],
            num_entity_tags,
            self.config["train_word_embeddings"],
        )
        model = IntentModel(network, max_seq_len)
        try:
            not_pretrained = pretrained.load_into(model.network)
        except ValueError as error:
            raise self._invalid(self.config, "model", f"names an unusable encoder: {error}")
        if not_pretrained:
            logger.warning(
                f"{self.__class__.__name__}: the encoder '{self.config['model']}' has no value for "
                f"{len(not_pretrained)} weights, which start from random values: "
                f"{', '.join(not_pretrained[:10])}"
            )
        label_of = {intent: label for label, intent in enumerate(self.intents)}
        model.train(
            [self.tokenizer.token_ids(e.get(TEXT), max_seq_len) for e in examples],
            [label_of[e.get(INTENT)] for e in examples],
            entity_tag_lists,
            entity_loss_weight=self.config["entity_loss_weight"],
            epochs=self.config["epochs"],
            batch_size=self.config["batch_size"],
            learning_rate=self.config["learning_rate"],
            label_smoothing=self.config["label_smoothing"],
            seed=self.config["random_seed"],
            show_progress=not rasa.shared.utils.io.is_logging_disabled(),
        )
        self.predictor = IntentPredictor(model.to_tflite(), max_seq_len)
        self.persist(pretrained)
        return self._resource

    def _entity_tags(
        self, examples: List[Message], max_seq_len: int
    ) -> Tuple[List[Optional[List[int]]], int]:
        """Each example's word-piece entity tags (None: untagged) and the number of tags."""
        if self.config["entity_loss_weight"] == 0:
            return [None] * len(examples), 0
        spans = [
            [
                entity
                for entity in example.get(ENTITIES) or []
                if isinstance(entity.get(ENTITY_ATTRIBUTE_START), int)
                and isinstance(entity.get(ENTITY_ATTRIBUTE_END), int)
                and isinstance(entity.get(ENTITY_ATTRIBUTE_TYPE), str)
            ]
            for example in examples
        ]
        entity_types = sorted({e[ENTITY_ATTRIBUTE_TYPE] for entities in spans for e in entities})
        if not entity_types:
            return [None] * len(examples), 0
        tag_of = {entity_type: tag for tag, entity_type in enumerate(entity_types, start=1)}
        tag_lists = [
            self.tokenizer.entity_tags(example.get(TEXT), entities, tag_of, max_seq_len)
            for example, entities in zip(examples, spans)
        ]
        return tag_lists, 1 + len(entity_types)

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets `intent` and `intent_ranking` on each message."""
        if self.predictor is None or self.tokenizer is None:
            for message in messages:
                message.set(INTENT, {"name": None, "confidence": 0.0}, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [], add_to_output=True)
            return messages

        max_seq_len = self.config["max_seq_len"]
        probabilities = self.predictor.predict(
            [self.tokenizer.token_ids(m.get(TEXT), max_seq_len) for m in messages]
        )
        for message, message_probabilities in zip(messages, probabilities):
            ranking = [
                {"name": self.intents[label], "confidence": float(message_probabilities[label])}
                for label in np.argsort(-message_probabilities, kind="stable")
            ]
            message.set(INTENT, ranking[0], add_to_output=True)
            if self.config[RANKING_LENGTH] > 0:
                ranking = ranking[: self.config[RANKING_LENGTH]]
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    def persist(self, pretrained: encoders.PretrainedEncoder) -> None:
        """Writes the TensorFlow Lite model, vocabulary and metadata into Rasa's model storage."""
        with self._model_storage.write_to(self._resource) as model_dir:
            (model_dir / MODEL_FILE).write_bytes(self.predictor.tflite_model)
            shutil.copyfile(pretrained.vocab_file, model_dir / VOCAB_FILE)
            rasa.shared.utils.io.dump_obj_as_json_to_file(
                model_dir / METADATA_FILE,
                {
                    "format_version": FORMAT_VERSION,
                    "intents": self.intents,
                    "do_lower_case": pretrained.do_lower_case,
                    "max_seq_len": self.predictor.max_seq_len,
                    # TensorFlow Lite does not check a model file before running it.
                    "model_sha256": hashlib.sha256(self.predictor.tflite_model).hexdigest(),
                },
            )

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "BertIntentClassifier":
        """Loads the trained component (see parent class for full docstring)."""
        component = cls(config, execution_context.node_name, model_storage, resource)
        try:
            with model_storage.read_from(resource) as model_dir:
                if (model_dir / METADATA_FILE).is_file():
                    component._load_trained(model_dir)
                    return component
        except InvalidConfigException:
            raise
        except ValueError:  # what `read_from` raises for a resource that does not exist
            pass
        logger.debug(
            f"Failed to load {cls.__name__} from model storage. Resource "
            f"'{resource.name}' doesn't exist."
        )
        return component

    def _load_trained(self, model_dir: Path) -> None:
        file_name = METADATA_FILE
        try:
            metadata = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
            if metadata.get("format_version") != FORMAT_VERSION:
                raise ValueError(
                    f"format version {metadata.get('format_version')!r}, this version of "
                    f"rasa-bert-intent reads {FORMAT_VERSION}"
                )
            self.intents = metadata["intents"]
            file_name = VOCAB_FILE
            self.tokenizer = WordPieceTokenizer(model_dir / VOCAB_FILE, metadata["do_lower_case"])
            file_name = MODEL_FILE
            tflite_model = (model_dir / MODEL_FILE).read_bytes()
            if hashlib.sha256(tflite_model).hexdigest() != metadata["model_sha256"]:
                raise ValueError("the file differs from the one training wrote")
            self.predictor = IntentPredictor(tflite_model, metadata["max_seq_len"])
            if self.predictor.num_intents != len(self.intents):
                raise ValueError(
                    f"it predicts {self.predictor.num_intents} intents, the metadata names "
                    f"{len(self.intents)}"
                )
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            tf.errors.OpError,  # tf.io.gfile's errors, from reading the vocabulary
        ) as error:
            raise RasaException(
                f"{self.__class__.__name__}: cannot load the trained model's '{file_name}' "
                f"from '{model_dir}' ({error.__class__.__name__}: {error}). "
                f"Retrain the model with `rasa train`."
            ) from error
        if self.config["max_seq_len"] > self.predictor.max_seq_len:
            raise self._invalid(
                self.config,
                "max_seq_len",
                f"must be at most the {self.predictor.max_seq_len} word pieces the model was "
                f"trained for: retrain it with `rasa train`",
            )
