"""Trains BertIntentClassifier with the defaults on SNIPS less the dev split (all of it, or k
examples per intent), writes the served model's intent probabilities, sentence vectors and word
piece counts for the training examples, the SNIPS dev split, casual_dev.yml's short and casual
requests and the out-of-scope sets: what benchmark/experiments/radius_dev.py compares edges of the
in-scope factor on; also the epochs the schedule chose and the pretrained encoder's vectors of
each message (the model's reference vectors). With --hwu-fold N: an HWU64 fold's training
file less a dev split of HWU_DEV_PER_INTENT per intent instead of SNIPS (no out-of-scope sets: they
are written for the SNIPS intents).

    .venv/bin/python benchmark/experiments/radius_features.py --per-intent 10 --seed 3 --out results/radius-dev
    .venv/bin/python benchmark/experiments/radius_features.py --hwu-fold 1 --out results/radius-dev
    .venv/bin/python benchmark/experiments/radius_features.py --per-intent 5 --seed 7 \
        --set "num_layers=None frozen_layers=2 prototype_head=True"
"""

import sys
from pathlib import Path

# The benchmark's shared modules (out_of_scope, slot_metrics, learning_curve, in_process).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402

from casual_in_scope import read_requests  # noqa: E402
from dev_eval import SNIPS, dev_split, new_classifier, overrides  # noqa: E402
from learning_curve import HWU, per_intent  # noqa: E402
from out_of_scope import read_out_of_scope  # noqa: E402
from rasa_bert_intent import BertIntentClassifier, schedule  # noqa: E402
from rasa_bert_intent.snips import read_source  # noqa: E402

CASUAL_DEV = Path(__file__).with_name("casual_dev.yml")
# HWU64 queries per intent held out of a fold's training file (as schedule_dev.py's split).
HWU_DEV_PER_INTENT, HWU_DEV_SEED = 10, 2019


def casual_dev():
    """{short: (texts, intents), casual: (texts, intents)} of casual_dev.yml."""
    requests = read_requests(CASUAL_DEV)
    return {
        kind: ([t for t, _, k in requests if k == kind], [i for _, i, k in requests if k == kind])
        for kind in ("short", "casual")
    }


def hwu_split(fold: int):
    """(training messages, dev messages) of an HWU64 fold's training file."""
    from rasa.shared.nlu.training_data.loading import load_data

    messages = load_data(str(HWU / f"fold{fold:02d}" / "train.json")).nlu_examples
    dev = per_intent(messages, HWU_DEV_PER_INTENT, HWU_DEV_SEED)
    dev_ids = {id(m) for m in dev}
    return [m for m in messages if id(m) not in dev_ids], dev


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-intent", type=int, default=0, help="0: all training examples")
    parser.add_argument("--seed", type=int, default=42, help="the subsample's and training's")
    parser.add_argument("--hwu-fold", type=int, help="an HWU64 fold instead of SNIPS")
    parser.add_argument("--out", type=Path, default=Path("results/radius-dev"))
    parser.add_argument("--set", default="", help='settings over the defaults: "a=1 b=True"')
    args = parser.parse_args()
    if args.hwu_fold:
        train, dev = hwu_split(args.hwu_fold)
    else:
        train, dev = dev_split(read_source(SNIPS)[0])
    train = per_intent(train, args.per_intent, args.seed)
    config = {
        **BertIntentClassifier.get_default_config(), "random_seed": args.seed, **overrides(args.set)
    }
    sets = {
        "train": ([m.get("text") for m in train], [m.get("intent") for m in train]),
        "dev": ([m.get("text") for m in dev], [m.get("intent") for m in dev]),
    }
    if not args.hwu_fold:
        sets.update({**casual_dev(), **read_out_of_scope()})
    arrays = {}
    with tempfile.TemporaryDirectory() as folder:
        classifier = new_classifier(config, folder)
        classifier.train(TrainingData(train))
        trained = classifier.trained
        for name, (texts, _kinds) in sets.items():
            ids = [trained.tokenizer.token_ids(text, config["max_seq_len"]) for text in texts]
            outputs = trained.predictor.predict(ids)
            arrays[f"{name}/probabilities"] = outputs.probabilities
            arrays[f"{name}/vectors"] = outputs.vectors
            arrays[f"{name}/references"] = outputs.reference_vectors
            arrays[f"{name}/pieces"] = np.array([len(i) for i in ids])
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"k{args.per_intent}-seed{args.seed}"
    if args.hwu_fold:
        name = f"hwu{args.hwu_fold}-{name}"
    np.savez(args.out / f"{name}.npz", **arrays)
    labels = [trained.intents.index(intent) for intent in sets["train"][1]]
    epochs = schedule.schedule(
        len(schedule.balanced_rows(labels)), len(trained.intents),
        prototype_head=config["prototype_head"],
    ).epochs
    meta = {"intents": trained.intents, "sets": sets, "epochs": epochs}
    (args.out / f"{name}.json").write_text(json.dumps(meta))
    print(f"wrote {args.out / name}.npz")


if __name__ == "__main__":
    main()
