"""`make learning-curve`: ours beside Rasa's default DIET pipeline from 5 examples per intent
to the whole data, on SNIPS and on HWU64 (../shared/nlu-evaluation-data).

SNIPS: k training queries per intent, with their slots, drawn with seeds 7, 8, 9 (one draw a
sample), tested on the 700 SNIPS test queries; CLINC150 dev and out_of_scope.yml give the
out-of-scope figures. The unbalanced assistant: all of SNIPS' training queries but
UNBALANCED's intents, cut to 15 each (draws with the same seeds), tested the same way; its
"small intents acc" is the accuracy on the test queries of the cut intents. HWU64: each fold's
train.json (all, or k per intent of it, drawn with the same seeds), tested on the same fold's
test.json; no out-of-scope set (CLINC's intents overlap HWU64's). CLINC150: k per intent of
its train split, tested on its val split (its test split is not in ../shared). Every run goes
through systems.benchmark, as `make benchmark` does. With `--previous REV` the component as it
was at that git revision trains beside ours on the same draws. Writes
benchmark/results/curve/: curve.json, curve.md (the tables) and curve.png (intent accuracy and
span F1 against the examples per intent).

    .venv/bin/python benchmark/learning_curve.py                      # everything: hours
    .venv/bin/python benchmark/learning_curve.py --sizes 10 50 --samples 1 --skip-hwu
    .venv/bin/python benchmark/learning_curve.py --previous HEAD~3 --skip-diet
"""

import argparse
import json
import os
import random
import statistics
import subprocess
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List

from out_of_scope import read_clinc_in_scope
from systems import DIET, HERE, OURS, REPOSITORY, benchmark, machine

SIZES = [5, 10, 25, 50, 100, 0]  # 0: the whole training data
HWU = REPOSITORY.parent / "shared" / "nlu-evaluation-data"
SAMPLE_SEEDS = [7, 8, 9]
# SNIPS intents cut to a few examples in the unbalanced assistant, and how many they keep.
UNBALANCED = {"AddToPlaylist": 15, "RateBook": 15}
FIGURES = [
    ("accuracy", "intent acc %"),
    ("small_intents_accuracy", "small intents acc %"),
    ("slot_f1", "entity F1"),
    ("in_scope_fallback_pct", "in scope falling back %"),
    ("out_of_scope_fallback_pct", "out of scope caught %"),
    ("train_seconds", "training s"),
    ("train_peak_rss_mb", "peak RSS MB"),
    ("latency_p50_ms", "p50 ms"),
]


def per_intent(messages, k: int, seed: int, intent_of=lambda message: message.get("intent")):
    """k messages of each intent (all where it has fewer), drawn with `seed`; all for k=0.
    `intent_of` reads a message's intent (by default a Rasa message's)."""
    if not k:
        return list(messages)
    shuffled = list(messages)
    random.Random(seed).shuffle(shuffled)
    taken, chosen = Counter(), []
    for message in shuffled:
        if taken[intent_of(message)] < k:
            taken[intent_of(message)] += 1
            chosen.append(message)
    return chosen


def unbalanced(messages, seed: int, intent_of=lambda message: message.get("intent")):
    """The messages with UNBALANCED's intents cut to their few, drawn with `seed`."""
    kept = [m for m in messages if intent_of(m) not in UNBALANCED]
    for intent, k in UNBALANCED.items():
        kept += per_intent([m for m in messages if intent_of(m) == intent], k, seed, intent_of)
    return kept


def small_intents_accuracy(intent_report: Path) -> float:
    """Accuracy on the test queries of UNBALANCED's intents, from `rasa test`'s report."""
    report = json.loads(intent_report.read_text(encoding="utf-8"))
    rows = [report[intent] for intent in UNBALANCED]
    return 100 * sum(r["recall"] * r["support"] for r in rows) / sum(r["support"] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="per intent; 0: all")
    parser.add_argument("--samples", type=int, default=3, help="draws per size for ours")
    parser.add_argument("--diet-samples", type=int, default=1, help="draws per size for DIET")
    parser.add_argument("--diet-epochs", type=int, default=100)
    parser.add_argument("--diet-sizes", type=int, nargs="*",
                        help="SNIPS sizes for DIET (all); the unbalanced assistant's is 15")
    parser.add_argument("--unbalanced", type=int, default=3,
                        help="draws of the unbalanced assistant for ours (DIET: --diet-samples)")
    parser.add_argument("--hwu-sizes", type=int, nargs="+", default=[5, 10, 0])
    parser.add_argument("--hwu-folds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--hwu-samples", type=int, default=2,
                        help="draws per fold at k per intent (the whole file: one)")
    parser.add_argument("--clinc-sizes", type=int, nargs="*", default=[10])
    parser.add_argument("--previous", metavar="REV",
                        help="also train the component as it was at this git revision")
    parser.add_argument("--hwu-diet-epochs", type=int, default=100)
    parser.add_argument("--hwu-diet-sizes", type=int, nargs="*", help="HWU64 sizes for DIET (all)")
    parser.add_argument("--skip-hwu", action="store_true")
    parser.add_argument("--skip-diet", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="keep runs whose run.json exists")
    parser.add_argument("--snips", type=Path, default=REPOSITORY.parent / "shared" / "snips-nlu-benchmark")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "curve")
    args = parser.parse_args()
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["RASA_MAX_CACHE_SIZE"] = "0"
    from rasa.shared.nlu.training_data.loading import load_data

    from rasa_bert_intent.snips import read_source, write_nlu_yaml

    diet = [*DIET[:-1], {**DIET[-1], "epochs": args.diet_epochs}]
    hwu_diet = [*DIET[:-1], {**DIET[-1], "epochs": args.hwu_diet_epochs}]
    previous = None
    if args.previous:
        previous = checkout(args.previous, args.out / "previous")
        print(f"previous: the component at {previous.name} ({args.previous})", flush=True)
    jobs = []  # (data set, size, system, sample, pipeline, train messages, test file)

    def ours(data: str, size: int, sample: int, train, test_file: Path) -> None:
        jobs.append((data, size, "ours", sample, OURS, train, test_file))
        if previous is not None:
            jobs.append((data, size, f"ours at {previous.name}", sample, OURS, train, test_file))
    snips_train, snips_test = read_source(args.snips)
    snips_test_file = args.out / "data" / "snips-test.yml"
    write_nlu_yaml(snips_test, snips_test_file)

    def snips_jobs(data: str, size: int, samples: int, draw) -> None:
        """Jobs of `samples` draws for ours (and DIET's) of SNIPS' training queries; `draw`
        gives the messages of a seed."""
        diet_size = args.diet_sizes is None or size in args.diet_sizes
        for sample in range(max(samples, 0 if args.skip_diet else args.diet_samples)):
            train = draw(SAMPLE_SEEDS[sample % len(SAMPLE_SEEDS)])
            if sample < samples:
                ours(data, size, sample, train, snips_test_file)
            if not args.skip_diet and diet_size and sample < args.diet_samples:
                jobs.append((data, size, "diet", sample, diet, train, snips_test_file))

    for size in args.sizes:
        snips_jobs("snips", size, args.samples, lambda seed: per_intent(snips_train, size, seed))
    snips_jobs(
        "snips-unbalanced", min(UNBALANCED.values()), args.unbalanced,
        lambda seed: unbalanced(snips_train, seed),
    )
    for fold in [] if args.skip_hwu else args.hwu_folds:
        folder = HWU / f"fold{fold:02d}"
        messages = load_data(str(folder / "train.json")).nlu_examples
        for size in args.hwu_sizes:
            for draw in range(args.hwu_samples if size else 1):
                train = per_intent(messages, size, SAMPLE_SEEDS[draw % len(SAMPLE_SEEDS)])
                sample = f"{fold}.{draw}" if size else fold
                ours("hwu64", size, sample, train, folder / "test.json")
                diet_size = args.hwu_diet_sizes is None or size in args.hwu_diet_sizes
                if not args.skip_diet and diet_size and draw < args.diet_samples:
                    jobs.append(("hwu64", size, "diet", sample, hwu_diet, train, folder / "test.json"))
    if args.clinc_sizes:
        clinc = read_clinc_in_scope()
        from rasa.shared.nlu.training_data.message import Message

        clinc_train = [Message.build(text=t, intent=i) for t, i in clinc["train"]]
        clinc_test_file = args.out / "data" / "clinc150-val.yml"
        write_nlu_yaml([Message.build(text=t, intent=i) for t, i in clinc["val"]], clinc_test_file)
        for size in args.clinc_sizes:
            for sample in range(args.samples):
                train = per_intent(clinc_train, size, SAMPLE_SEEDS[sample % len(SAMPLE_SEEDS)])
                ours("clinc150", size, sample, train, clinc_test_file)

    runs = []
    for data, size, system, sample, pipeline, train, test_file in jobs:
        name = f"{data}-{size or 'all'}-{system.replace(' ', '-')}-{sample}"
        print(f"\n=== {name}: {len(train)} training examples ===", flush=True)
        saved = args.out / name / "run.json"
        if args.reuse and saved.is_file():
            figures = json.loads(saved.read_text(encoding="utf-8"))
        else:
            train_file = args.out / "data" / f"{name}.yml"
            write_nlu_yaml(train, train_file)
            test_counts = Counter(m.get("text") for m in load_data(str(test_file)).nlu_examples)
            figures = benchmark(
                name, pipeline, train_file, test_file, test_counts, args.out,
                with_out_of_scope=data.startswith("snips"),
                code=previous if system.startswith("ours at") else None,
            )
            if data == "snips-unbalanced":
                figures["small_intents_accuracy"] = small_intents_accuracy(
                    args.out / name / "report" / "intent_report.json"
                )
            figures = {k: figures.get(k) for k, _ in FIGURES}
            figures["diet_epochs"] = pipeline[-1].get("epochs") if system == "diet" else None
            saved.write_text(json.dumps(figures, indent=2), encoding="utf-8")
        runs.append({"data": data, "size": size, "system": system, "sample": sample,
                     "examples": len(train), **figures})
        print(json.dumps(runs[-1]), flush=True)

    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "runs": runs,
    }
    (args.out / "curve.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (args.out / "curve.md").write_text(markdown(results), encoding="utf-8")
    plot(runs, args.out / "curve.png")
    print("\n" + markdown(results))


def checkout(revision: str, folder: Path) -> Path:
    """The `components` folder of the repository at `revision`, written under `folder`, in a
    folder named after its commit."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{revision}^{{commit}}"],
        cwd=REPOSITORY, check=True, capture_output=True, text=True,
    ).stdout.strip()
    target = folder / commit
    if not (target / "rasa_bert_intent").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", commit, "components"], cwd=REPOSITORY, check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "--strip-components=1", "-C", str(target)], input=archive,
                       check=True)
    return target


def grouped(runs: List[Dict]) -> Dict:
    """{(data, size): {system: [runs]}} in the order the runs came."""
    groups: Dict = {}
    for run in runs:
        groups.setdefault((run["data"], run["size"]), {}).setdefault(run["system"], []).append(run)
    return groups


def cell(runs: List[Dict], key: str) -> str:
    values = [r[key] for r in runs if r.get(key) is not None]
    if not values:
        return "–"
    digits = 0 if key == "train_peak_rss_mb" else 1
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def markdown(results: Dict) -> str:
    m = results["machine"]
    lines = [
        f"Learning curve, measured {results['date'][:16]} UTC on {m['cpu']}, {m['cores']} cores "
        f"(Rasa {m['rasa']}). Mean ± standard deviation over the samples (SNIPS: draws of the "
        f"training data; HWU64: folds); n = runs. Falling back: config.yml's FallbackClassifier "
        f"judges every system's parses.",
        "",
        "| data | per intent | examples | system (n) | "
        + " | ".join(title for _, title in FIGURES) + " |",
        "|---|---|---|---|" + "---|" * len(FIGURES),
    ]
    for (data, size), systems in grouped(results["runs"]).items():
        for system, runs in systems.items():
            label = system
            if system == "diet":
                label = f"DIET, {runs[0].get('diet_epochs')} epochs"
            lines.append(
                f"| {data} | {size or 'all'} | {round(statistics.mean(r['examples'] for r in runs))} "
                f"| {label} ({len(runs)}) | "
                + " | ".join(cell(runs, key) for key, _ in FIGURES) + " |"
            )
    return "\n".join(lines) + "\n"


def plot(runs: List[Dict], path: Path) -> None:
    """Intent accuracy and entity F1 against examples per intent, one line per data set and
    system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    titles = dict(FIGURES)
    for key, axis in zip(("accuracy", "slot_f1"), axes):
        lines: Dict = {}
        for (data, size), systems in grouped(runs).items():
            if data == "snips-unbalanced":  # a single size, in the table only
                continue
            for system, group in systems.items():
                per_intent_count = size or statistics.mean(
                    r["examples"] for r in group
                ) / {"snips": 7, "hwu64": 64, "clinc150": 150}[data]
                values = [r[key] for r in group if r.get(key) is not None]
                if values:
                    lines.setdefault((data, system), []).append(
                        (per_intent_count, statistics.mean(values))
                    )
        for (data, system), points in lines.items():
            points.sort()
            axis.plot(*zip(*points), marker="o", linestyle="-" if system == "ours" else "--",
                      label=f"{'DIET' if system == 'diet' else system}, {data}")
        axis.set_xscale("log")
        axis.set_xlabel("training examples per intent")
        axis.set_title(titles[key])
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
