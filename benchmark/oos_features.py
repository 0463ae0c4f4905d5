"""Trains BertIntentClassifier on SNIPS less the dev split, writes the network's sentence
vectors, dense layer outputs, intent logits and word piece counts for in-scope and
out-of-scope texts.

    .venv/bin/python benchmark/oos_features.py --seed 42 --out results/oos-dev

Out-of-scope texts: ../shared/clinc150-oos/dev.json and benchmark/out_of_scope.yml. The
vectors feed benchmark/oos_dev.py, which compares out-of-scope scores on them. With
--out-of-scope-intent, half A of them trains an intent `out_of_scope` too.
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402

from dev_eval import SNIPS, dev_split, new_classifier  # noqa: E402
from out_of_scope import half_a, read_out_of_scope  # noqa: E402
from rasa_bert_intent import BertIntentClassifier  # noqa: E402
from rasa_bert_intent.model import IntentModel  # noqa: E402
from rasa_bert_intent.snips import read_source  # noqa: E402
from rasa_bert_intent.tokenization import length_batches, pad  # noqa: E402


def features(network, tokenizer, texts, max_seq_len):
    """{pooled, dense, logits, pieces}: one row per text (pieces: its word piece count)."""

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def forward(token_ids):
        logits, _, pooled = network.intent_and_entity_tag_logits(token_ids, False)
        return pooled, network.dense(pooled), logits

    ids = [tokenizer.token_ids(text, max_seq_len) for text in texts]
    rows = {"pooled": [None] * len(ids), "dense": [None] * len(ids), "logits": [None] * len(ids)}
    for length, batch in length_batches(ids, 64, max_seq_len):
        outputs = forward(pad([ids[row] for row in batch], length))
        for name, output in zip(("pooled", "dense", "logits"), outputs):
            for row, vector in zip(batch, output.numpy()):
                rows[name][row] = vector
    return {**{name: np.stack(vectors) for name, vectors in rows.items()},
            "pieces": np.array([len(i) for i in ids])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("results/oos-dev"))
    parser.add_argument(
        "--out-of-scope-intent",
        action="store_true",
        help="train half A of the out-of-scope data (see oos_dev.py) as an intent `out_of_scope`",
    )
    args = parser.parse_args()
    train, _test = read_source(SNIPS)
    train, dev = dev_split(train)
    if args.out_of_scope_intent:
        for name, (texts, kinds) in read_out_of_scope().items():
            in_half_a = half_a(name, kinds)
            train += [
                Message.build(text=text, intent="out_of_scope")
                for text, is_a in zip(texts, in_half_a)
                if is_a
            ]
    captured = {}
    to_onnx = IntentModel.to_onnx

    def capture(model, precision):
        captured["network"] = model.network
        return to_onnx(model, precision)

    IntentModel.to_onnx = capture
    config = {**BertIntentClassifier.get_default_config(), "random_seed": args.seed}
    with tempfile.TemporaryDirectory() as folder:
        classifier = new_classifier(config, folder)
        classifier.train(TrainingData(train))
    sets = {
        "train": ([m.get("text") for m in train], [m.get("intent") for m in train]),
        "dev": ([m.get("text") for m in dev], [m.get("intent") for m in dev]),
        **read_out_of_scope(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, (texts, kinds) in sets.items():
        for feature, values in features(
            captured["network"], classifier.trained.tokenizer, texts, config["max_seq_len"]
        ).items():
            arrays[f"{name}/{feature}"] = values
    name = f"seed{args.seed}{'-out-of-scope-intent' if args.out_of_scope_intent else ''}"
    np.savez(args.out / f"{name}.npz", **arrays)
    (args.out / f"{name}.json").write_text(
        json.dumps({"intents": classifier.trained.intents, "sets": sets})
    )
    print(f"wrote {args.out / name}.npz")


if __name__ == "__main__":
    main()
