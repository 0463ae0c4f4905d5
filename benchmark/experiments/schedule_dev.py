"""Dev figures of training settings at several data sizes: SNIPS subsamples and HWU64 folds.

Dev data only. SNIPS: the 700-query dev split of dev_eval.py, training on k queries per intent
drawn from the rest. HWU64: 10 examples per intent of a fold's train.json held out as dev,
training on the rest or k per intent of it. CLINC150 (`clinc:k`): k per intent of its train
split, its val split as dev. The test files are never read.

    .venv/bin/python benchmark/experiments/schedule_dev.py --data snips:10 snips:50 hwu:10 -- "" "learning_rate=1e-4"
    .venv/bin/python benchmark/experiments/schedule_dev.py --data snips-unbalanced --samples 1 -- ""
    .venv/bin/python benchmark/experiments/schedule_dev.py --data clinc:10 -- "" "in_scope.NEIGHBOUR_WEIGHT=5"

An argument after `--` is one configuration: space-separated setting=value overrides of the
defaults, and `schedule.NAME=value` (or `training.`, `network.`, `in_scope.`, `in_scope_fit.`) for
the modules' constants. The served model that training.train gives is scored (its time is the
training's, export and out-of-scope statistics included). Printed per data set and configuration:
intent accuracy on dev, the share of dev queries that config.yml's FallbackClassifier would send to
`nlu_fallback` (and the share it would send on the plain softmax probabilities, without the in-scope
factor), span F1, sentence accuracy (intent and every span right), and for SNIPS the share of
out-of-scope messages (CLINC150 dev and out_of_scope.yml) caught.
"""

import sys
from pathlib import Path

# The benchmark's shared modules (out_of_scope, slot_metrics, learning_curve, in_process).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import logging
import os
import statistics
from collections import Counter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from rasa.shared.nlu.training_data.loading import load_data  # noqa: E402

import in_process  # noqa: E402
import out_of_scope  # noqa: E402
from dev_eval import SNIPS, dev_split, overrides  # noqa: E402
from in_process import as_examples  # noqa: E402
from learning_curve import UNBALANCED, per_intent, unbalanced  # noqa: E402
from rasa_bert_intent import in_scope, in_scope_fit, network, schedule, training  # noqa: E402
from rasa_bert_intent.settings import default_config  # noqa: E402
from rasa_bert_intent.snips import read_source  # noqa: E402

HWU = Path(__file__).resolve().parents[3] / "shared" / "nlu-evaluation-data"
MODULES = {
    "schedule": schedule,
    "training": training,
    "network": network,
    "in_scope": in_scope,
    "in_scope_fit": in_scope_fit,
}
HWU_DEV_PER_INTENT = 10
INTENT_OF = lambda example: example.intent  # noqa: E731


def hwu_split(fold: int):
    messages = load_data(str(HWU / f"fold{fold:02d}" / "train.json")).nlu_examples
    examples = as_examples(messages)
    dev = per_intent(examples, HWU_DEV_PER_INTENT, 2019, INTENT_OF)
    dev_ids = {id(e) for e in dev}
    return [e for e in examples if id(e) not in dev_ids], dev


def data_sets(names, samples):
    """(name, training examples, dev examples, with out-of-scope) for each data set name."""
    snips_train, _test = read_source(SNIPS)
    snips_pool, snips_dev = map(as_examples, dev_split(snips_train))
    for name in names:
        kind, _, size = name.partition(":")
        for sample in range(samples):
            if kind == "snips":
                pool, dev, oos = snips_pool, snips_dev, True
            elif kind == "snips-unbalanced":
                pool, dev, oos = snips_pool, snips_dev, True
                pool = unbalanced(pool, sample, INTENT_OF)
            elif kind == "clinc":
                clinc = out_of_scope.read_clinc_in_scope()
                pool, dev = ([training.Example(t, i) for t, i in clinc[s]] for s in ("train", "val"))
                oos = False  # its out-of-scope queries are the SNIPS assistant's
            else:
                pool, dev = hwu_split(1 + sample)
                oos = False  # CLINC's other intents overlap HWU64's domains
            train = per_intent(pool, int(size), 7 + sample, INTENT_OF) if size else pool
            yield f"{name}#{sample}", train, dev, oos


def evaluate(config, train, dev, oos_texts):
    trained, seconds = in_process.train(train, config)
    figures = in_process.score(trained, dev, config["max_seq_len"])
    predicted = figures.pop("predicted")
    figures.pop("served_predicted")
    figures["train_s"] = seconds
    counts = Counter(e.intent for e in train)
    if any(0 < counts[i] < max(counts.values()) / 10 for i in UNBALANCED):
        figures["small_acc"] = 100 * np.mean(
            [p == e.intent for p, e in zip(predicted, dev) if e.intent in UNBALANCED]
        )
    if oos_texts:
        _, _, oos_confidences, _ = in_process.predict(trained, oos_texts, config["max_seq_len"])
        figures["oos_caught"] = 100 * np.mean(out_of_scope.rows_falling_back(oos_confidences))
    return figures


def apply(argument):
    """The config of one argument, after setting the training constants it names."""
    config = {}
    for key, value in overrides(argument).items():
        module, _, name = key.partition(".")
        if module in MODULES:
            setattr(MODULES[module], name, value)
        else:
            config[key] = value
    return {**default_config(), **config}


def main():
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("rasa_bert_intent").setLevel(logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=["snips:10"])
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("configs", nargs="*", default=[""])
    args = parser.parse_args()
    oos = [t for texts, _ in out_of_scope.read_out_of_scope().values() for t in texts]
    constants = {
        (module, k): getattr(module, k) for module in MODULES.values() for k in dir(module)
        if k.isupper()
    }
    results = {}
    for name, train, dev, with_oos in data_sets(args.data, args.samples):
        for argument in args.configs:
            for (module, key), value in constants.items():
                setattr(module, key, value)
            figures = evaluate(apply(argument), train, dev, oos if with_oos else None)
            results.setdefault((name.split("#")[0], argument), []).append(figures)
            print(f"{name} ({len(train)} examples) [{argument or 'defaults'}] " + ", ".join(
                f"{k} {v:.1f}" for k, v in figures.items()), flush=True)
    print("\nmeans over samples:")
    for (name, argument), runs in results.items():
        means = {k: statistics.mean(r[k] for r in runs) for k in runs[0]}
        print(f"{name} [{argument or 'defaults'}] " + ", ".join(
            f"{k} {v:.1f}" for k, v in means.items()))


if __name__ == "__main__":
    main()
