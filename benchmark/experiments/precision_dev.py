"""int8 against fp32 on the SNIPS dev split: one training per seed, the network served both ways.

    .venv/bin/python benchmark/experiments/precision_dev.py --seeds 42 43

Trains BertIntentClassifier (int8, the default) on SNIPS training queries less the dev split
(dev_eval.dev_split), then exports the same trained network in fp32 and fits its out-of-scope
statistics on the fp32 vectors, as training with `precision: fp32` would. For each precision it
prints the dev intent errors, slot F1, the share of dev queries and of the out-of-scope dev
messages (../shared/clinc150-oos and benchmark/out_of_scope.yml) that config.yml's
FallbackClassifier turns into `nlu_fallback`, and the time `process` takes for the 700 dev
queries in one call.
"""

import sys
from pathlib import Path

# The benchmark's shared modules (out_of_scope, slot_metrics, learning_curve, in_process).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import dataclasses
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rasa.shared.nlu.training_data.message import Message  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402

from dev_eval import SNIPS, dev_split, new_classifier  # noqa: E402
from out_of_scope import figures, read_out_of_scope  # noqa: E402
from rasa_bert_intent import BertIntentClassifier, in_scope_fit  # noqa: E402
from rasa_bert_intent.network import IntentNetwork  # noqa: E402
from rasa_bert_intent.schedule import balanced_rows, schedule  # noqa: E402
from rasa_bert_intent.predictor import Predictor  # noqa: E402
from rasa_bert_intent.snips import read_source  # noqa: E402
from slot_metrics import slot_scores, spans  # noqa: E402


def parsed(messages):
    return [
        {"text": m.get("text"), "intent": m.get("intent"), "ranking": m.get("intent_ranking")}
        for m in messages
    ]


def evaluate(classifier, dev, out_of_scope) -> str:
    """One line of dev figures for the classifier as it is."""
    started = time.perf_counter()
    predicted = classifier.process([Message.build(text=m.get("text")) for m in dev])
    seconds = time.perf_counter() - started
    intents_right = [p.get("intent")["name"] == m.get("intent") for p, m in zip(predicted, dev)]
    slots = slot_scores(
        [spans(m.get("entities") or []) for m in dev],
        [spans(p.get("entities") or []) for p in predicted],
        intents_right,
    )
    oos = []
    for name, (texts, kinds) in out_of_scope.items():
        messages = classifier.process([Message.build(text=text) for text in texts])
        oos += [{**p, "set": name, "kind": kind} for p, kind in zip(parsed(messages), kinds)]
    scope = figures(parsed(predicted), oos)
    return (
        f"intent errors {intents_right.count(False)} of {len(dev)}, slot F1 "
        f"{slots['slot_f1']:.2f}, sentence accuracy {slots['sentence_accuracy']:.2f}%, dev "
        f"falling back {scope['in_scope_fallback_pct']:.2f}%, out-of-scope falling back "
        f"{scope['out_of_scope_fallback_pct']:.2f}% (AUROC {scope['oos_auroc']:.4f}), process "
        f"of the {len(dev)} dev queries {seconds:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    args = parser.parse_args()
    train, _test = read_source(SNIPS)
    train, dev = dev_split(train)
    out_of_scope = read_out_of_scope()
    captured = {}
    to_onnx = IntentNetwork.to_onnx

    def capture(network, precision, reference=None):
        captured["network"], captured["reference"] = network, reference
        return to_onnx(network, precision, reference)

    IntentNetwork.to_onnx = capture
    for seed in args.seeds:
        config = {**BertIntentClassifier.get_default_config(), "random_seed": seed}
        with tempfile.TemporaryDirectory() as folder:
            classifier = new_classifier(config, folder)
            classifier.train(TrainingData(train))
        print(f"seed {seed} int8: {evaluate(classifier, dev, out_of_scope)}", flush=True)
        trained = classifier.trained
        max_seq_len = config["max_seq_len"]
        fp32 = Predictor(
            to_onnx(captured["network"], "fp32", captured["reference"]), max_seq_len, "fp32"
        )
        token_id_lists = [trained.tokenizer.token_ids(m.get("text"), max_seq_len) for m in train]
        label_of = {intent: label for label, intent in enumerate(trained.intents)}
        labels = [label_of[m.get("intent")] for m in train]
        in_scope = in_scope_fit.fit_to_examples(
            fp32,
            token_id_lists,
            labels,
            schedule(len(balanced_rows(labels)), len(label_of)).epochs,
            seed,
        )
        classifier.trained = dataclasses.replace(trained, predictor=fp32, in_scope=in_scope)
        print(f"seed {seed} fp32: {evaluate(classifier, dev, out_of_scope)}", flush=True)


if __name__ == "__main__":
    main()
