"""Trains BertIntentClassifier with the defaults on SNIPS less the dev split (all of it, or k
examples per intent), writes the served model's intent probabilities, sentence vectors and word
piece counts for the training examples, the SNIPS dev split, casual_dev.yml's short and casual
requests and the out-of-scope sets: what benchmark/radius_dev.py compares radius rules on.

    .venv/bin/python benchmark/radius_features.py --per-intent 10 --seed 3 --out results/radius-dev
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402

from casual_in_scope import read_requests  # noqa: E402
from dev_eval import SNIPS, dev_split, new_classifier  # noqa: E402
from learning_curve import per_intent  # noqa: E402
from out_of_scope import read_out_of_scope  # noqa: E402
from rasa_bert_intent import BertIntentClassifier  # noqa: E402
from rasa_bert_intent.snips import read_source  # noqa: E402

CASUAL_DEV = Path(__file__).with_name("casual_dev.yml")


def casual_dev():
    """{short: (texts, intents), casual: (texts, intents)} of casual_dev.yml."""
    requests = read_requests(CASUAL_DEV)
    return {
        kind: ([t for t, _, k in requests if k == kind], [i for _, i, k in requests if k == kind])
        for kind in ("short", "casual")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-intent", type=int, default=0, help="0: all training examples")
    parser.add_argument("--seed", type=int, default=42, help="the subsample's and training's")
    parser.add_argument("--out", type=Path, default=Path("results/radius-dev"))
    args = parser.parse_args()
    train, _test = read_source(SNIPS)
    train, dev = dev_split(train)
    train = per_intent(train, args.per_intent, args.seed)
    config = {**BertIntentClassifier.get_default_config(), "random_seed": args.seed}
    sets = {
        "train": ([m.get("text") for m in train], [m.get("intent") for m in train]),
        "dev": ([m.get("text") for m in dev], [m.get("intent") for m in dev]),
        **casual_dev(),
        **read_out_of_scope(),
    }
    arrays = {}
    with tempfile.TemporaryDirectory() as folder:
        classifier = new_classifier(config, folder)
        classifier.train(TrainingData(train))
        trained = classifier.trained
        for name, (texts, _kinds) in sets.items():
            ids = [trained.tokenizer.token_ids(text, config["max_seq_len"]) for text in texts]
            probabilities, _tags, vectors = trained.predictor.predict(ids)
            arrays[f"{name}/probabilities"] = probabilities
            arrays[f"{name}/vectors"] = vectors
            arrays[f"{name}/pieces"] = np.array([len(i) for i in ids])
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"k{args.per_intent}-seed{args.seed}"
    np.savez(args.out / f"{name}.npz", **arrays)
    (args.out / f"{name}.json").write_text(json.dumps({"intents": trained.intents, "sets": sets}))
    print(f"wrote {args.out / name}.npz")


if __name__ == "__main__":
    main()
