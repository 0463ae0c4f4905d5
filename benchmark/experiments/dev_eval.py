"""Trains BertIntentClassifier on SNIPS training queries less a dev split, prints dev figures.

The dev split is 100 queries per intent (700, as the research papers keep aside), drawn with a
fixed seed from the 13,784 training queries; the 700 test queries are never looked at.

    .venv/bin/python benchmark/experiments/dev_eval.py pooling=mean pooling=cls
    .venv/bin/python benchmark/experiments/dev_eval.py "num_layers=4 epochs=2" "num_layers=3 epochs=3"

Each argument is one configuration: space-separated setting=value overrides of the defaults.
Besides accuracy it prints the dev log loss (the mean of -ln p(true intent)), which still
separates settings when they make the same handful of errors, each misclassified query, the
span-level slot F1 and sentence accuracy (benchmark/slot_metrics.py) and how many predicted
tag sequences put an I tag where no entity of its label goes on (what the Viterbi decoding of
`entities.best_tags` prevents), and the slot figures without that decoding.
"""

import sys
from pathlib import Path

# The benchmark's shared modules (out_of_scope, slot_metrics, learning_curve, in_process).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ast
import math
import os
import random
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rasa.engine.graph import ExecutionContext, GraphSchema  # noqa: E402
from rasa.engine.storage.local_model_storage import LocalModelStorage  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402

from rasa_bert_intent import BertIntentClassifier  # noqa: E402
from rasa_bert_intent.cli import DEFAULT_SOURCE  # noqa: E402
from rasa_bert_intent.snips import read_source  # noqa: E402
from slot_metrics import slot_scores, spans  # noqa: E402

SNIPS = Path(__file__).resolve().parents[2] / DEFAULT_SOURCE
DEV_PER_INTENT = 100
DEV_SEED = 2019


def dev_split(train):
    """(training queries, dev queries): 100 distinct queries per intent go to dev."""
    distinct = list(dict.fromkeys(train))
    random.Random(DEV_SEED).shuffle(distinct)
    dev, taken = [], {}
    for message in distinct:
        intent = message.get("intent")
        if taken.get(intent, 0) < DEV_PER_INTENT:
            taken[intent] = taken.get(intent, 0) + 1
            dev.append(message)
    dev_texts = {m.get("text") for m in dev}
    return [m for m in train if m.get("text") not in dev_texts], dev


def new_classifier(config: dict, folder: str) -> BertIntentClassifier:
    """An untrained classifier of `config` whose model storage is `folder`."""
    return BertIntentClassifier.create(
        config,
        LocalModelStorage(Path(folder)),
        Resource("dev"),
        ExecutionContext(GraphSchema({}), "dev"),
    )


def true_probability(predicted: Message, intent: str) -> float:
    """The probability the classifier gave the true intent, floored to keep the log finite."""
    ranking = {entry["name"]: entry["confidence"] for entry in predicted.get("intent_ranking")}
    return max(ranking.get(intent, 0.0), 1e-7)


def overrides(argument: str) -> dict:
    config = {}
    for pair in argument.split():
        key, value = pair.split("=", 1)
        try:
            config[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            config[key] = value
    return config


def main() -> None:
    train, _test = read_source(SNIPS)
    train, dev = dev_split(train)
    print(f"{len(train)} training, {len(dev)} dev queries")
    for argument in sys.argv[1:] or [""]:
        config = {**BertIntentClassifier.get_default_config(), **overrides(argument)}
        with tempfile.TemporaryDirectory() as folder:
            classifier = new_classifier(config, folder)
            started = time.perf_counter()
            classifier.train(TrainingData(train))
            seconds = time.perf_counter() - started
            predicted = classifier.process([Message.build(text=m.get("text")) for m in dev])
            broken, argmax_spans = argmax_decoding(classifier, dev)
        errors = [
            (p, m) for p, m in zip(predicted, dev) if p.get("intent")["name"] != m.get("intent")
        ]
        log_loss = -sum(
            math.log(true_probability(p, m.get("intent"))) for p, m in zip(predicted, dev)
        )
        print(
            f"[{argument or 'defaults'}] dev accuracy {100 * (1 - len(errors) / len(dev)):.2f}% "
            f"({len(errors)} errors of {len(dev)}), log loss {log_loss / len(dev):.4f}, "
            f"training {seconds:.0f} s",
            flush=True,
        )
        for p, m in errors:
            print(f"    {m.get('intent')} -> {p.get('intent')['name']}: {m.get('text')}")
        expected_spans = [spans(m.get("entities") or []) for m in dev]
        intents_right = [p.get("intent")["name"] == m.get("intent") for p, m in zip(predicted, dev)]
        slots = slot_scores(
            expected_spans, [spans(p.get("entities") or []) for p in predicted], intents_right
        )
        print(
            f"    slot F1 {slots['slot_f1']:.2f} (precision {slots['slot_precision']:.2f}, "
            f"recall {slots['slot_recall']:.2f}), sentence accuracy "
            f"{slots['sentence_accuracy']:.2f}%, {broken} dev queries with an I tag that "
            f"continues no entity of its label; errors by kind: "
            + ", ".join(f"{kind} {n}" for kind, n in slots["slot_error_kinds"].items()),
            flush=True,
        )
        argmax_slots = slot_scores(expected_spans, argmax_spans, intents_right)
        print(
            f"    with each word's most likely tag instead: slot F1 {argmax_slots['slot_f1']:.2f}, "
            f"sentence accuracy {argmax_slots['sentence_accuracy']:.2f}%",
            flush=True,
        )
        for p, m in zip(predicted, dev):
            if spans(p.get("entities") or []) != spans(m.get("entities") or []):
                print(f"    slots: {m.get('text')!r} expected {spans(m.get('entities') or [])}"
                      f" got {spans(p.get('entities') or [])}")


def argmax_decoding(classifier, dev):
    """(dev queries with an I tag that continues no entity of its label, each query's slot
    spans) when each word takes its most likely tag alone, an I that continues nothing
    starting an entity: the decoding that `entities.best_tags` replaced."""
    broken, found = 0, []
    trained = classifier.trained
    for message in dev:
        text = message.get("text")
        encoding = trained.tokenizer.encode(text, classifier.settings.max_seq_len)
        (tag_probabilities,) = trained.predictor.predict([encoding.token_ids]).tag_probabilities
        tags = tag_probabilities[encoding.first_pieces].argmax(axis=-1)
        entities, previous, is_broken = [], 0, False
        for (start, end), tag in zip(encoding.words, tags):
            if tag and tag % 2 == 0 and previous in (tag - 1, tag):
                entities[-1]["end"] = end
            elif tag:
                is_broken |= tag % 2 == 0
                label = trained.entity_labels[(tag - 1) // 2][0]
                entities.append({"entity": label, "start": start, "end": end})
            previous = tag
        for entity in entities:
            entity["value"] = text[entity["start"] : entity["end"]]
        broken += is_broken
        found.append(spans(entities))
    return broken, found


if __name__ == "__main__":
    main()
