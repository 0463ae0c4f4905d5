"""The component through Rasa's component API, as Rasa's own tests build its classifiers: the
small assistant's data, creating, parsing, loading to fine-tune."""

import dataclasses
import re
import shutil

from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from helpers.assistants import EXAMPLES as NLU_EXAMPLES
from rasa_bert_intent import BertIntentClassifier

MARKUP = re.compile(r"\[([^\]]+)\]\([^)]+\)")
# Plain texts: entity markup is for the NLU YAML tests.
EXAMPLES = {intent: [MARKUP.sub(r"\1", t) for t in texts] for intent, texts in NLU_EXAMPLES.items()}
# Only for tests of plumbing that judge no quality (warnings, refusals, files): one short pass.
# Every test that checks what the model predicts trains with the shipped defaults.
FAST = {"epochs": 1}


def training_data() -> TrainingData:
    return TrainingData(
        [
            Message.build(text=text, intent=intent)
            for intent, texts in EXAMPLES.items()
            for text in texts
        ]
    )


def config_of(classifier: BertIntentClassifier) -> dict:
    """The classifier's settings as a config, to load what it trained."""
    return dataclasses.asdict(classifier.settings)


def create(config, model_storage, resource, execution_context) -> BertIntentClassifier:
    return BertIntentClassifier.create(
        {**BertIntentClassifier.get_default_config(), **config},
        model_storage,
        resource,
        execution_context,
    )


def parse(classifier, *texts):
    return classifier.process([Message.build(text=text) for text in texts])


def load_to_finetune(trained, tmp_path):
    """The trained classifier loaded as `rasa train --finetune` loads it, from a copy of its
    storage (the fine-tune writes where it read)."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    classifier, storage, resource, _ = trained
    with storage.read_from(resource) as model_dir:
        shutil.copytree(model_dir, tmp_path / resource.name)
    copy_storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test-model", is_finetuning=True)
    return BertIntentClassifier.load(config_of(classifier), copy_storage, resource, context)


def entities_of(message):
    return [
        (e["entity"], e["value"], e.get("role"), e.get("group"))
        for e in message.get("entities") or []
    ]


HOSTILE_TEXTS = [
    "",
    "   \t\n ",
    "x" * 10_000,
    "weather " * 2_000,
    "\N{SLICE OF PIZZA}\N{MUSICAL NOTE}\N{CLOUD WITH RAIN}\ufe0f",
    "明天北京天气怎么样",
    "ما هو الطقس غدا",
    "e\u0301\u0301\u0301 n\u0303",
    "\x00\x01\x07 hi \x1b[31m",
    "\u200b\u200b\ufeff",
    "\ud800 lone surrogate",
    "<script>alert('hi')</script>",
    '{"intent": "greet", "text": [1, 2]}',
    "'; DROP TABLE intents; --",
]
