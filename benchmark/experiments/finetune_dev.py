"""Dev figures of fine-tuning variants on HWU64: a model trained on the dev pool less a tenth
(every example of two intents among it), fine-tuned on all of it with a fraction of 0.25, beside
a full training of all of it.

Dev data only: schedule_dev.py's HWU64 split (10 examples per intent of fold 1's train.json held
out as dev), training on k per intent of the rest (`--sizes`, 0: all of it), drawn with the seed.

    .venv/bin/python benchmark/experiments/finetune_dev.py --sizes 12 --seeds 7 8 -- \
        "" "finetune.HELD_LAYERS=0 finetune.BATCH_FACTOR=1"

An argument after `--` is one fine-tune configuration, as in schedule_dev.py (`finetune.NAME=value`
sets the fine-tune's constants). Printed for each: dev intent accuracy, span F1, the new intents'
dev queries right (the softmax's and the served confidences' top intent), and the seconds
training.train took.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402

import in_process  # noqa: E402
import schedule_dev  # noqa: E402
from finetune_benchmark import split  # noqa: E402
from learning_curve import per_intent  # noqa: E402
from rasa_bert_intent import finetune  # noqa: E402
from rasa_bert_intent.settings import FINETUNING_EPOCH_FRACTION, default_config  # noqa: E402

schedule_dev.MODULES["finetune"] = finetune


def figures(trained, seconds, dev, new_intents):
    scores = in_process.score(trained, dev, default_config()["max_seq_len"])
    new = {}
    for accuracy in ("predicted", "served_predicted"):
        right = [p == e.intent for p, e in zip(scores[accuracy], dev) if e.intent in new_intents]
        new[accuracy] = 100 * sum(right) / len(right)
    return {"acc": scores["acc"], "served_acc": scores["served_acc"], "f1": scores["f1"],
            "new": new["predicted"], "served_new": new["served_predicted"],
            "fallback": scores["fallback"], "train_s": seconds}


def main():
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("rasa_bert_intent").setLevel(logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[12])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("configs", nargs="*", default=[""])
    args = parser.parse_args()
    pool, dev = schedule_dev.hwu_split(1)
    constants = {k: getattr(finetune, k) for k in dir(finetune) if k.isupper()}
    results = {}
    for size in args.sizes:
        for seed in args.seeds:
            whole = per_intent(pool, size, seed, schedule_dev.INTENT_OF)
            base_examples, new_intents = split(whole, seed)
            base, _ = in_process.train(base_examples)
            state = in_process.as_stored(base)
            del base
            runs = {}
            for argument in args.configs:
                for key, value in constants.items():
                    setattr(finetune, key, value)
                config = schedule_dev.apply(argument)
                config[FINETUNING_EPOCH_FRACTION] = args.fraction
                trained, seconds = in_process.train(whole, config, previous=state)
                runs[f"fine-tune [{argument or 'defaults'}]"] = figures(
                    trained, seconds, dev, new_intents)
                del trained
            for key, value in constants.items():
                setattr(finetune, key, value)
            trained, seconds = in_process.train(whole)
            runs["full training"] = figures(trained, seconds, dev, new_intents)
            del trained
            for name, run in runs.items():
                results.setdefault((size, name), []).append(run)
                print(f"size {size} seed {seed} {name}: " + ", ".join(
                    f"{k} {v:.1f}" for k, v in run.items()), flush=True)
    print("\nmeans over seeds:")
    for (size, name), runs in results.items():
        means = {k: statistics.mean(r[k] for r in runs) for k in runs[0]}
        full = statistics.mean(r["train_s"] for r in results[(size, "full training")])
        print(f"size {size} {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in means.items())
              + f", time / full {means['train_s'] / full:.2f}")


if __name__ == "__main__":
    main()
