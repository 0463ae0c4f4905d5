"""`BertIntentClassifier`: fine-tuned BERT intents and entities as a Rasa 3 graph component.

The Rasa adapter: Rasa's messages in and out; the work is in the modules docs/how-it-works.md
maps (training.py trains, predictor.py serves, storage.py keeps the files).
"""

import logging
from typing import Any, Dict, List, Mapping, Optional, Text

import numpy as np

import rasa.shared.utils.io
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_bert_intent import entities as entity_tags
from rasa_bert_intent import finetune, rasa_checks, rasa_message, storage, training
from rasa_bert_intent.predictor import ServedModel
from rasa_bert_intent.pretrained import encoder as encoders
from rasa_bert_intent.responses import DELIMITER, LabelGroups, utter_action
from rasa_bert_intent.settings import Settings, default_config
from rasa_bert_intent.training import Example

logger = logging.getLogger(__name__)


@DefaultV1Recipe.register(
    [
        DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER,
        DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR,
    ],
    is_trainable=True,
)
class BertIntentClassifier(GraphComponent, IntentClassifier, EntityExtractorMixin):
    """Fine-tunes a BERT encoder on the raw message text to predict intents and entities."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config (see parent class for full docstring)."""
        return default_config()

    @staticmethod
    def required_packages() -> List[Text]:
        """Any extra python dependencies required for this component to run."""
        return ["tensorflow", "safetensors", "tokenizers", "onnxruntime", "onnx"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Fingerprints the encoder's files and bert-for-tf2, which Rasa cannot see."""
        settings = Settings.from_config(config)  # Rasa passes it unmerged at times
        try:
            folder = encoders.model_folder(settings.model)
        except encoders.EncoderNotFound as error:
            raise settings.invalid("model", f"names no encoder: {error}")
        return f"{encoders.fingerprint(folder)}-bert-for-tf2-{encoders.BERT_FOR_TF2_VERSION}"

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: Optional[ExecutionContext] = None,
    ) -> None:
        """Checks the config; `train` or `load` provide the trained model."""
        self.settings = Settings.from_config(config)
        self._model_storage = model_storage
        self._resource = resource
        # The retrieval intents that a ResponseSelector in the graph answers (None: all).
        self._selected_elsewhere = (
            rasa_checks.selector_intents(execution_context.graph_schema)
            if execution_context is not None
            else set()
        )
        # Labels, tokenizer, exported network and out-of-scope statistics; None untrained.
        self.trained: Optional[ServedModel] = None
        # The previous model's weights when `rasa train --finetune` loaded it to train on.
        self.finetune_from: Optional[finetune.FinetuneState] = None

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "BertIntentClassifier":
        """Creates a new untrained component (see parent class for full docstring)."""
        return cls(config, model_storage, resource, execution_context)

    def train(self, training_data: TrainingData) -> Resource:
        """Fine-tunes the encoder and the heads on the NLU examples."""
        classify_intents = self.settings.intent_classification
        answered = self._answered_retrieval_intents(training_data)
        examples = [
            Example(e.get(TEXT), self._label_of(e, answered), e.get(ENTITIES) or [])
            for e in self.filter_trainable_entities(training_data.nlu_examples)
            if e.get(TEXT) and (e.get(INTENT) or not classify_intents)
        ]
        intents = sorted({e.intent for e in examples if e.intent})
        if classify_intents and len(intents) == 1:
            raise RasaException(
                f"{self.name}: the training data has examples of one intent only "
                f"('{intents[0]}'); a classifier needs at least two intents to tell apart. Add "
                f"examples of another intent, or set `intent_classification: false`."
            )
        labels = entity_tags.labels_in([e.entities for e in examples])
        if not self.settings.predicts_entities:
            labels = []
        if not intents and not labels:
            logger.warning(
                f"{self.name}: the training data has no "
                f"{'intent examples' if classify_intents else 'entity annotations'}, so the "
                f"component is not trained and predicts nothing. Add examples to your NLU data."
            )
            return self._resource

        pretrained, bert_config = self.settings.encoder()
        # Rasa sets the level of its own loggers only (--debug, --quiet, LOG_LEVEL); the
        # training log (training.py's, export.py's), which says what schedule the data got,
        # follows it.
        logging.getLogger(__package__).setLevel(logging.getLogger("rasa").getEffectiveLevel())
        try:
            self.trained = training.train(
                examples,
                intents,
                labels,
                pretrained,
                bert_config,
                self.settings,
                show_progress=not rasa.shared.utils.io.is_logging_disabled(),
                previous=self.finetune_from,
            )
        except training.UnusableEncoder as error:
            raise self.settings.invalid("model", f"names an unusable encoder: {error}")
        except finetune.CannotContinue as error:
            raise RasaException(
                f"{self.name}: cannot fine-tune the previous model: {error}. Its encoder "
                f"('model', 'num_layers', 'frozen_layers') differs from this training's: train "
                f"without --finetune."
            )
        self.trained.responses = self._responses_of(intents, training_data)
        with self._model_storage.write_to(self._resource) as model_dir:
            storage.write(model_dir, self.trained, training.pretrained_weights(pretrained))
        return self._resource

    def _answered_retrieval_intents(self, training_data: TrainingData) -> List[Text]:
        """The retrieval intents whose response keys this component learns: all of them but
        those a ResponseSelector in the pipeline answers."""
        if self._selected_elsewhere is None or not self.settings.intent_classification:
            return []
        return sorted(set(training_data.retrieval_intents) - self._selected_elsewhere)

    @staticmethod
    def _label_of(example: Message, answered: List[Text]) -> Optional[Text]:
        """The network's label of an example: its response key if it answers its intent."""
        key = example.get(INTENT_RESPONSE_KEY)
        return key if key and example.get(INTENT) in answered else example.get(INTENT)

    def _responses_of(
        self, labels: List[Text], training_data: TrainingData
    ) -> Dict[Text, List[Dict[Text, Any]]]:
        """The domain's responses of each response key learnt; a warning names those without."""
        keys = [label for label in labels if DELIMITER in label]
        missing = [key for key in keys if not training_data.responses.get(utter_action(key))]
        if missing:
            logger.warning(
                f"{self.name}: the domain has no responses for {', '.join(missing[:5])}"
                f"{' and more' if len(missing) > 5 else ''}: add "
                f"`{utter_action(missing[0])}` and the others to its responses. Until then "
                f"the selected response is the key itself, as with Rasa's ResponseSelector."
            )
        return {
            key: training_data.responses[utter_action(key)] for key in keys if key not in missing
        }

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets `intent`, `intent_ranking` and `entities` on each message (and word tokens)."""
        trained = self.trained
        encodings = [
            trained.tokenizer.encode(m.get(TEXT), self.settings.max_seq_len)
            if trained is not None
            else None
            for m in messages
        ]
        probabilities, tag_probabilities = None, [None] * len(messages)
        if trained is not None:
            outputs = trained.predictor.predict([encoding.token_ids for encoding in encodings])
            lengths = [len(encoding.token_ids) for encoding in encodings]
            probabilities = trained.confidences(outputs, lengths)
            tag_probabilities = outputs.tag_probabilities
        for row, (message, encoding) in enumerate(zip(messages, encodings)):
            if encoding is not None and not message.get(TOKENS_NAMES[TEXT]):
                # `rasa test nlu` scores entities per Rasa token: our words, if no tokenizer ran.
                text = message.get(TEXT) or ""
                tokens = [Token(text[start:end], start, end) for start, end in encoding.words]
                message.set(TOKENS_NAMES[TEXT], tokens)
            if self.settings.intent_classification:
                self._set_intent_and_responses(
                    message, None if probabilities is None else probabilities[row]
                )
            if self.settings.entity_recognition and tag_probabilities[row] is not None:
                found = entity_tags.decode(
                    message.get(TEXT) or "",
                    encoding.words,
                    tag_probabilities[row][encoding.first_pieces],
                    trained.entity_labels,
                    trained.entity_transitions,
                )
                message.set(
                    ENTITIES,
                    message.get(ENTITIES, []) + self.add_extractor_name(found),
                    add_to_output=True,
                )
        return messages

    def _set_intent_and_responses(
        self, message: Message, confidences: Optional[np.ndarray]
    ) -> None:
        trained, ranking_length = self.trained, self.settings.ranking_length
        groups = trained.label_groups if trained is not None else None
        if groups is None or confidences is None:
            rasa_message.set_intent(message, LabelGroups([]), None, ranking_length)
            return
        rasa_message.set_intent(message, groups, confidences, ranking_length)
        rasa_message.set_responses(
            message, groups, confidences, trained.responses, ranking_length
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
        component = cls(config, model_storage, resource, execution_context)
        try:
            with model_storage.read_from(resource) as model_dir:
                # A fine-tune reads what it continues from: the served model is trained anew.
                pretrained = component._pretrained_weights
                if storage.is_trained(model_dir) and execution_context.is_finetuning:
                    component.finetune_from = storage.read_finetune_state(model_dir, pretrained)
                elif storage.is_trained(model_dir):
                    component.trained = storage.read(model_dir, pretrained)
        except ValueError:  # what `read_from` raises for a resource that does not exist
            pass
        if component.trained is None and component.finetune_from is None:
            logger.debug(
                f"Failed to load {cls.__name__} from model storage. Resource "
                f"'{resource.name}' doesn't exist."
            )
        elif component.trained and (
            component.settings.max_seq_len > component.trained.predictor.max_seq_len
        ):
            raise component.settings.invalid(
                "max_seq_len",
                f"must be at most the {component.trained.predictor.max_seq_len} word pieces the "
                f"model was trained for: retrain it with `rasa train`",
            )
        return component

    def _pretrained_weights(self) -> Mapping[str, Any]:
        """The encoder's weights, which the model's files leave out (storage.MODEL_FILE)."""
        try:
            pretrained = encoders.load_pretrained(self.settings.model)
        except encoders.EncoderNotFound as error:
            raise RasaException(
                f"{self.name}: a model reads the pretrained encoder it was trained with where "
                f"it is loaded, as a spaCy pipeline reads its spaCy model, and the encoder "
                f"cannot be read here: {error}"
            ) from error
        return training.pretrained_weights(pretrained)


# Rasa builds the training graph and its validators after importing the component.
rasa_checks.register_as_entity_extractor(BertIntentClassifier)
rasa_checks.register_as_response_selector(BertIntentClassifier)
rasa_checks.allow_new_labels_for(BertIntentClassifier)
