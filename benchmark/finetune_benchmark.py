"""`rasa train nlu --finetune` measured on HWU64 as a user runs it: a model trained on part of a
fold's training file, then fine-tuned on all of it (two intents new), beside a full training of
all of it, each through Rasa's command line.

    .venv/bin/python benchmark/finetune_benchmark.py --hwu ../shared/nlu-evaluation-data

For each size (0: the whole train.json; k: k examples per intent of it) the benchmark trains
the project's config.yml with `rasa train nlu` on the file less a tenth of it, the tenth holding
all the examples of two intents drawn with the seed; fine-tunes that model on the whole set with
`rasa train nlu --finetune --epoch-fraction 0.25`; and trains the whole set from the pretrained
encoder with `rasa train nlu`. Each command's wall time is measured (Rasa's cache off); each
archive's component is scored on the fold's test.json: intent accuracy, span F1, the new intents'
test queries recognised (of the intent the component answers, and of the softmax's), the share
falling back; and the archive's size.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from rasa.shared.nlu.training_data.loading import load_data  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402

import in_process  # noqa: E402
from learning_curve import per_intent  # noqa: E402
from rasa_bert_intent.settings import default_config  # noqa: E402

HELD_OUT_SHARE = 0.1
NEW_INTENTS = 2
INTENT_OF = lambda example: example.intent  # noqa: E731
RASA = str(Path(sys.executable).with_name("rasa"))
CONFIG = Path(__file__).resolve().parents[1] / "config.yml"


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


def rasa_train_nlu(work: Path, name: str, data, *arguments: str) -> float:
    """Writes the messages as NLU data and trains `name`.tar.gz on them with `rasa train nlu`;
    the seconds it took."""
    (work / f"{name}.yml").write_text(TrainingData(list(data)).nlu_as_yaml(), encoding="utf-8")
    command = [RASA, "train", "nlu", "--config", str(CONFIG), "--nlu", f"{name}.yml",
               "--out", ".", "--fixed-model-name", name, *arguments]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True,
                          env={**os.environ, "RASA_MAX_CACHE_SIZE": "0"})
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return seconds


def figures(work: Path, name: str, seconds: float, test, new_intents):
    archive = work / f"{name}.tar.gz"
    served = in_process.from_archive(archive)
    scores = in_process.score(served, test, default_config()["max_seq_len"])
    new = {}
    for accuracy in ("predicted", "served_predicted"):
        pairs = zip(scores.pop(accuracy), test)
        right = [p == e.intent for p, e in pairs if e.intent in new_intents]
        new[accuracy] = 100 * np.mean(right) if right else None
    return {**scores, "new_intents_acc": new["predicted"], "served_new_intents_acc":
            new["served_predicted"], "wall_s": seconds, "archive_mb": archive.stat().st_size / 1e6}


def main() -> None:
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
    pool = load_data(str(folder / "train.json")).nlu_examples
    test = in_process.as_examples(load_data(str(folder / "test.json")).nlu_examples)
    work = args.out / "work"
    results = []
    for size in args.sizes:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        whole = per_intent(pool, size, args.seed, lambda m: m.get("intent"))
        examples = in_process.as_examples(whole)
        base_examples, new_intents = split(examples, args.seed)
        kept = {id(e) for e in base_examples}
        base = [m for m, e in zip(whole, examples) if id(e) in kept]
        known = [e for e in test if e.intent in {x.intent for x in examples}]
        runs = {"previous model": ("base", base, ())}
        finetune = ("--finetune", "base.tar.gz", "--epoch-fraction", str(args.fraction))
        runs[f"fine-tuned, fraction {args.fraction}"] = ("finetuned", whole, finetune)
        runs["full training"] = ("full", whole, ())
        label = f"{size} per intent" if size else "whole train.json"
        for run, (name, data, arguments) in runs.items():
            seconds = rasa_train_nlu(work, name, data, *arguments)
            results.append({"fold": args.fold, "data": label, "examples": len(data),
                            "new_intents": new_intents, "run": run,
                            **figures(work, name, seconds, known, new_intents)})
            print(json.dumps(results[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print("\n" + markdown(results))


def markdown(results) -> str:
    lines = [
        "| HWU64 fold | data | run | examples | intent acc (softmax's) | span F1 | new intents' "
        "queries right (softmax's) | falling back | `rasa train nlu` s | of the full training's "
        "| archive MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    full = {r["data"]: r["wall_s"] for r in results if r["run"] == "full training"}
    for r in results:
        new = "–" if r["new_intents_acc"] is None else (
            f"{r['served_new_intents_acc']:.1f} ({r['new_intents_acc']:.1f})")
        fine_tune = r["run"].startswith("fine-tuned") and r["data"] in full
        share = f"{r['wall_s'] / full[r['data']]:.2f}" if fine_tune else "–"
        lines.append(
            f"| {r['fold']} | {r['data']} | {r['run']} | {r['examples']} | "
            f"{r['served_acc']:.2f} ({r['acc']:.2f}) | "
            f"{r['f1']:.2f} | {new} | {r['fallback']:.1f} | {r['wall_s']:.0f} | {share} | "
            f"{r['archive_mb']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
