"""`rasa train --finetune` measured on HWU64: a model trained on part of a fold's training
file, then fine-tuned on all of it (two intents new), beside a full training of all of it.

    .venv/bin/python benchmark/finetune_benchmark.py --hwu ../shared/nlu-evaluation-data

For each size (0: the whole train.json; k: k examples per intent of it) the benchmark trains
the component with its defaults on the file less a tenth of it, the tenth holding all the
examples of two intents drawn with the seed; fine-tunes that model on the whole set with
`finetuning_epoch_fraction` (what `--epoch-fraction` gives the component); and trains the whole
set from the pretrained encoder. Each is scored on the fold's test.json: intent accuracy, span
F1, the new intents' test queries recognised, and the seconds `training.train` took (the
component's whole training: network, export, out-of-scope statistics), in this process rather
than through Rasa's command line, so that the time is the component's alone (tests/test_cli.py
fine-tunes through the command line).
"""

import argparse
import json
import logging
import os
import random
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from rasa.shared.nlu.training_data.loading import load_data  # noqa: E402

import in_process  # noqa: E402
from learning_curve import per_intent  # noqa: E402
from rasa_bert_intent.settings import FINETUNING_EPOCH_FRACTION  # noqa: E402
from rasa_bert_intent.settings import default_config  # noqa: E402

HELD_OUT_SHARE = 0.1
NEW_INTENTS = 2
INTENT_OF = lambda example: example.intent  # noqa: E731


def split(examples, seed: int):
    """The examples less a held-out tenth (every example of NEW_INTENTS intents, the rest
    drawn from the other intents), and the new intents."""
    rng = random.Random(seed)
    intents = sorted({e.intent for e in examples})
    new = sorted(rng.sample(intents, NEW_INTENTS))
    held_out = [e for e in examples if e.intent in new]
    others = [e for e in examples if e.intent not in new]
    rng.shuffle(others)
    more = max(0, round(HELD_OUT_SHARE * len(examples)) - len(held_out))
    held_ids = {id(e) for e in held_out + others[:more]}
    return [e for e in examples if id(e) not in held_ids], new


def figures(trained, seconds, test, new_intents, max_seq_len):
    scores = in_process.score(trained, test, max_seq_len)
    predicted = scores.pop("predicted")
    new = [p == e.intent for p, e in zip(predicted, test) if e.intent in new_intents]
    return {**scores, "new_intents_acc": 100 * np.mean(new) if new else None, "train_s": seconds}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hwu", type=Path, required=True, help="nlu-evaluation-data folder")
    parser.add_argument("--fold", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 0],
                        help="examples per intent; 0: the whole train.json")
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("benchmark/results/finetune"))
    args = parser.parse_args()
    folder = args.hwu / f"fold{args.fold:02d}"
    pool = in_process.as_examples(load_data(str(folder / "train.json")).nlu_examples)
    test = in_process.as_examples(load_data(str(folder / "test.json")).nlu_examples)
    config = default_config()
    results = []
    for size in args.sizes:
        whole = per_intent(pool, size, args.seed, INTENT_OF)
        base_examples, new_intents = split(whole, args.seed)
        known = [e for e in test if e.intent in {x.intent for x in whole}]
        base, base_s = in_process.train(base_examples)
        runs = {"previous model": figures(base, base_s, known, new_intents, config["max_seq_len"])}
        weights = base.finetune_state
        del base
        finetuned, finetune_s = in_process.train(
            whole, {FINETUNING_EPOCH_FRACTION: args.fraction}, previous=weights
        )
        runs[f"fine-tuned, fraction {args.fraction}"] = figures(
            finetuned, finetune_s, known, new_intents, config["max_seq_len"]
        )
        del finetuned
        full, full_s = in_process.train(whole)
        runs["full training"] = figures(full, full_s, known, new_intents, config["max_seq_len"])
        del full
        label = f"{size} per intent" if size else "whole train.json"
        for name, run in runs.items():
            results.append({"fold": args.fold, "data": label, "examples": len(whole),
                            "previous_examples": len(base_examples),
                            "new_intents": new_intents, "run": name, **run})
            print(json.dumps(results[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print("\n" + markdown(results))


def markdown(results) -> str:
    lines = [
        "| HWU64 fold | data | run | examples | intent acc | span F1 | new intents' queries right "
        "| falling back | training s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        examples = r["previous_examples"] if r["run"] == "previous model" else r["examples"]
        new = "–" if r["new_intents_acc"] is None else f"{r['new_intents_acc']:.1f}"
        lines.append(
            f"| {r['fold']} | {r['data']} | {r['run']} | {examples} | {r['acc']:.2f} | "
            f"{r['f1']:.2f} | {new} | {r['fallback']:.1f} | {r['train_s']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
