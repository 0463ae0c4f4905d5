"""The served model that `training.train` gives, trained and scored in this process, without
Rasa's command line: for the benchmarks that compare trainings of one data set (a fine-tune
beside a full training) and for the dev experiments."""

import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

import out_of_scope
from rasa_bert_intent import BertIntentClassifier, storage, training
from rasa_bert_intent import entities as entity_tags
from rasa_bert_intent.finetune import FinetuneState
from rasa_bert_intent.predictor import ServedModel
from rasa_bert_intent.settings import default_config
from slot_metrics import slot_scores, spans


def as_examples(messages) -> List[training.Example]:
    """Rasa messages as the training module's examples."""
    return [
        training.Example(m.get("text"), m.get("intent"), m.get("entities") or [])
        for m in messages
    ]


def train(
    examples: Sequence[training.Example],
    config: Optional[Dict] = None,
    previous: Optional[FinetuneState] = None,
) -> Tuple[ServedModel, float]:
    """What the component trains on the examples with `config` (merged over the defaults),
    from `previous` when fine-tuning, and the seconds `training.train` took."""
    component = BertIntentClassifier({**default_config(), **(config or {})}, None, None)
    intents = sorted({e.intent for e in examples})
    labels = entity_tags.labels_in([e.entities for e in examples])
    pretrained, bert_config = component.settings.encoder()
    started = time.perf_counter()
    trained = training.train(
        examples, intents, labels, pretrained, bert_config, component.settings,
        show_progress=False, previous=previous,
    )
    return trained, time.perf_counter() - started


def as_stored(trained: ServedModel) -> FinetuneState:
    """What a fine-tune of the trained model continues from, through its files as `rasa train
    --finetune` reads them (the weights kept compact, the pretrained vectors kept)."""
    pretrained, _ = BertIntentClassifier(default_config(), None, None).settings.encoder()
    with tempfile.TemporaryDirectory() as folder:
        storage.write(Path(folder), trained, training.pretrained_weights(pretrained))
        return storage.read_finetune_state(
            Path(folder), lambda: training.pretrained_weights(pretrained)
        )


def from_archive(archive: Path) -> ServedModel:
    """The served model of the component in a model archive that `rasa train` wrote."""
    from rasa.engine.graph import ExecutionContext
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    with tempfile.TemporaryDirectory() as folder:
        model_storage, metadata = LocalModelStorage.from_model_archive(Path(folder), archive)
        schema = metadata.predict_schema
        node = next(n for n in schema.nodes.values() if n.uses is BertIntentClassifier)
        context = ExecutionContext(schema, metadata.model_id)
        return BertIntentClassifier.load(node.config, model_storage, node.resource, context).trained


def predict(trained: ServedModel, texts: Sequence[str], max_seq_len: int):
    """Encodings, probabilities, confidences (probabilities times the in-scope factor) and tag
    probabilities of the served model."""
    encodings = [trained.tokenizer.encode(text, max_seq_len) for text in texts]
    outputs = trained.predictor.predict([e.token_ids for e in encodings])
    confidences = trained.confidences(outputs, [len(e.token_ids) for e in encodings])
    return encodings, outputs.probabilities, confidences, outputs.tag_probabilities


def score(
    trained: ServedModel, test: Sequence[training.Example], max_seq_len: int
) -> Dict:
    """Intent accuracy (the softmax's and the served confidences'), the share falling back (with
    and without the in-scope factor), span F1 and sentence accuracy on the test examples, and
    each one's predicted intent (the softmax's, and the served confidences')."""
    encodings, probabilities, confidences, tags = predict(
        trained, [e.text for e in test], max_seq_len
    )
    predicted = [trained.intents[i] for i in probabilities.argmax(axis=1)]
    right = [p == e.intent for p, e in zip(predicted, test)]
    # What the component answers: the confidences' top intent (the neighbours weigh it).
    served_predicted = [trained.intents[i] for i in confidences.argmax(axis=1)]
    served = [p == e.intent for p, e in zip(served_predicted, test)]
    found = []
    for example, encoding, tag in zip(test, encodings, tags):
        found.append([] if tag is None else spans(entity_tags.decode(
            example.text, encoding.words, tag[encoding.first_pieces], trained.entity_labels,
            trained.entity_transitions,
        )))
    slots = slot_scores([spans(e.entities) for e in test], found, right)
    return {
        "acc": 100 * np.mean(right),
        "served_acc": 100 * np.mean(served),
        "fallback": 100 * np.mean(out_of_scope.rows_falling_back(confidences)),
        # What the softmax alone sends to nlu_fallback, without the in-scope factor.
        "softmax_fallback": 100 * np.mean(out_of_scope.rows_falling_back(probabilities)),
        "f1": slots["slot_f1"],
        "sentence_acc": slots["sentence_accuracy"],
        "predicted": predicted,
        "served_predicted": served_predicted,
    }
