"""`make benchmark`: our component and Rasa's default DIET pipeline on SNIPS, side by side, then
on HWU64 folds (../shared/nlu-evaluation-data: 64 intents, 54 entity types).

Each system is trained with `rasa train nlu` and tested with `rasa test nlu` (Rasa's own
evaluation, reports and confusion matrix, and its per-token entity report), then its archive
is loaded into a Rasa `Agent` that parses the test queries one at a time for latency; its
entities give the span-level slot F1 and sentence accuracy. The same agent parses 3,058
out-of-scope messages (benchmark/out_of_scope.py), and config.yml's FallbackClassifier
judges them and the test queries. Everything lands in benchmark/results/: results.json
(every figure and the machine), results.md (the tables), the confusion matrices and
confidences.png (the top confidences of in-scope and out-of-scope messages). On each HWU64 fold
(its train.json, tested on its test.json) the same seeds and DIET give intent accuracy, entity
F1, sentence accuracy, Rasa's per-token entity report and the slot errors by kind; no
out-of-scope set there (CLINC150's intents overlap HWU64's).

    .venv/bin/python benchmark/snips_benchmark.py                 # 3 seeds and DIET
    .venv/bin/python benchmark/snips_benchmark.py --seeds 42 --skip-diet --hwu-folds
    .venv/bin/python benchmark/snips_benchmark.py --table benchmark/results/results.json
"""

import argparse
import functools
import json
import os
import statistics
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List

import out_of_scope
from rasa_bert_intent.cli import DEFAULT_SOURCE
from learning_curve import HWU
from systems import DIET, HERE, OURS, REPOSITORY, benchmark, machine

SEEDS = [42, 43, 44]
# An HWU64 fold's training and test files, in its folder fold01, fold02, ...
HWU64_FILES = ("train.json", "test.json")
# Per-message lists in run.json, left out of what is printed.
LISTS = (
    "misclassified",
    "slot_errors",
    "in_scope_confidences",
    "out_of_scope_confidences",
    "out_of_scope_kept",
)

# Published results on the same 700 test queries (intent accuracy, slot F1, sentence
# accuracy, where the paper gives them); quoted, not measured here.
PUBLISHED = [
    ("BERT-base fine-tuned with Keras (the reference article)", 97.71, None, None),
    ("JointBERT (Chen et al. 2019)", 98.6, 97.0, 92.8),
    ("Stack-Propagation + BERT (Qin et al. 2019)", 99.0, None, None),
    ("SlotRefine + BERT (2020)", 99.04, None, None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS, help="our random seeds")
    parser.add_argument("--skip-diet", action="store_true", help="train and test ours only")
    parser.add_argument("--diet-epochs", type=int, default=100, help="DIETClassifier epochs")
    parser.add_argument(
        "--hwu-folds", type=int, nargs="*", default=[1], help="HWU64 folds (none: SNIPS only)"
    )
    parser.add_argument(
        "--hwu-diet-epochs",
        type=int,
        default=100,
        help="DIETClassifier epochs on HWU64 (100, its default: about 4 hours a fold on 2 cores)",
    )
    parser.add_argument(
        "--intents-only",
        action="store_true",
        help="also ours with entity_recognition: false (seed 42), the intent-only runtime",
    )
    parser.add_argument(
        "--softmax-baseline",
        action="store_true",
        help="also ours with out_of_scope_detection: false (seed 42), the plain softmax",
    )
    parser.add_argument(
        "--fp32",
        action="store_true",
        help="also ours with precision: fp32 (seed 42), the unquantised network",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="take each system's figures from an earlier run's <out>/<system>/run.json if there",
    )
    parser.add_argument("--snips", type=Path, default=REPOSITORY / DEFAULT_SOURCE)
    parser.add_argument("--hwu", type=Path, default=HWU)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Every system trains from scratch: no component restored from Rasa's training cache.
    os.environ["RASA_MAX_CACHE_SIZE"] = "0"

    from rasa_bert_intent.snips import ConversionError, read_source, write_nlu_yaml

    try:
        train, test = read_source(args.snips)
    except ConversionError as error:
        sys.exit(f"benchmark: {error}")
    for fold in args.hwu_folds:  # checked before SNIPS' hours of training
        if not all((args.hwu / f"fold{fold:02d}" / f).is_file() for f in HWU64_FILES):
            sys.exit(f"benchmark: no HWU64 fold {fold} in {args.hwu} (train.json and test.json)")
    train_file, test_file = args.out / "data/train.yml", args.out / "data/test.yml"
    write_nlu_yaml(train, train_file)
    write_nlu_yaml(test, test_file)  # Rasa keeps each repeated query once: 697 of the 700
    test_query_counts = Counter(m.get("text") for m in test)

    systems = {f"ours-seed-{seed}": [{**OURS[0], "random_seed": seed}] for seed in args.seeds}
    if args.intents_only:
        systems["intents-only-seed-42"] = [{**OURS[0], "entity_recognition": False}]
    if args.fp32:
        systems["fp32-seed-42"] = [{**OURS[0], "precision": "fp32"}]
    if args.softmax_baseline:
        systems["softmax-seed-42"] = [{**OURS[0], "out_of_scope_detection": False}]
    if not args.skip_diet:
        systems["diet"] = [*DIET[:-1], {**DIET[-1], "epochs": args.diet_epochs}]
    runs = run_systems(args, systems, train_file, test_file, test_query_counts)

    hwu64 = {}
    for fold in args.hwu_folds:
        hwu64[fold] = hwu64_fold(args, fold, systems)

    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "test_queries": len(test),
        "runs": runs,
        "ours": summary([r for name, r in runs.items() if name.startswith("ours")]),
        "hwu64": hwu64,
        "published": [
            {"system": s, "accuracy": a, "slot_f1": f, "sentence_accuracy": sa}
            for s, a, f, sa in PUBLISHED
        ],
    }
    (args.out / "results.json").write_text(
        json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    (args.out / "results.md").write_text(markdown(results), encoding="utf-8")
    out_of_scope.plot(
        {
            name: (r["in_scope_confidences"], r["out_of_scope_confidences"])
            for name, r in runs.items()
            if name in ("ours-seed-42", "softmax-seed-42", "diet")
        },
        args.out / "confidences.png",
    )
    print("\n" + markdown(results))


def run_systems(
    args: argparse.Namespace,
    systems: Dict,
    train_file: Path,
    test_file: Path,
    test_query_counts: Counter,
    prefix: str = "",
    with_out_of_scope: bool = True,
) -> Dict:
    """Each system's figures (`benchmark`, or with --reuse an earlier run's), by name."""
    runs = {}
    for name, pipeline in systems.items():
        name = prefix + name
        print(f"\n=== {name} ===", flush=True)
        saved = args.out / name / "run.json"
        if args.reuse and saved.is_file():
            runs[name] = json.loads(saved.read_text(encoding="utf-8"))
        else:
            runs[name] = benchmark(
                name, pipeline, train_file, test_file, test_query_counts, args.out,
                with_out_of_scope,
            )
            saved.write_text(json.dumps(runs[name], indent=2, ensure_ascii=False), "utf-8")
        print(json.dumps({k: v for k, v in runs[name].items() if k not in LISTS}), flush=True)
    return runs


def hwu64_fold(args: argparse.Namespace, fold: int, snips_systems: Dict) -> Dict:
    """Our seeds and DIET trained on an HWU64 fold's train.json, tested on its test.json."""
    from rasa.shared.nlu.training_data.loading import load_data

    train_file, test_file = (args.hwu / f"fold{fold:02d}" / f for f in HWU64_FILES)
    test_query_counts = Counter(m.get("text") for m in load_data(str(test_file)).nlu_examples)
    systems = {name: pipeline for name, pipeline in snips_systems.items() if name != "diet"}
    if not args.skip_diet:
        systems["diet"] = [*DIET[:-1], {**DIET[-1], "epochs": args.hwu_diet_epochs}]
    runs = run_systems(
        args, systems, train_file, test_file, test_query_counts,
        prefix=f"hwu64-fold-{fold}-", with_out_of_scope=False,
    )
    ours = [r for name, r in runs.items() if "-ours-" in name]
    return {"test_queries": sum(test_query_counts.values()), "runs": runs, "ours": summary(ours)}


def summary(runs: List[Dict]) -> Dict:
    """Mean, standard deviation and range over our seeds."""
    if not runs:
        return {}
    figures = {}
    for key in (
        "accuracy",
        "macro_f1",
        "slot_f1",
        "sentence_accuracy",
        "rasa_entity_f1",
        "errors",
        "errors_of_all_test_queries",
        "train_seconds",
        "train_peak_rss_mb",
        "export_seconds",
        "archive_mb",
        "latency_p50_ms",
        "latency_p95_ms",
        "test_seconds",
        "in_scope_fallback_pct",
        "out_of_scope_fallback_pct",
        "oos_auroc",
        "oos_recall_at_95_pct_kept",
    ):
        values = [r.get(key) for r in runs]
        if None in values:
            continue
        figures[key] = {
            "mean": statistics.mean(values),
            "min": min(values),
            "max": max(values),
            "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
        }
    return figures


def markdown(results: Dict) -> str:
    """The results table, our mean first, then each run, then the published figures."""
    m, runs, ours = results["machine"], results["runs"], results["ours"]
    lines = [
        f"SNIPS on the {results['test_queries']} test queries, measured {results['date'][:10]} "
        f"on {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
        f"{'a GPU' if m['gpu'] else 'no GPU'} (Rasa {m['rasa']}, TensorFlow {m['tensorflow']}).",
        "Rasa's evaluation tests each distinct query once (697); \"errors of all\" counts a "
        "repeated query each time it occurs. Slot F1 is span level (type and both offsets "
        "right); sentence accuracy needs the intent and every slot right; Rasa's entity F1 "
        "is the micro average of `rasa test nlu`'s per-token entity report.",
        "",
        "| System | Intent accuracy % | Slot F1 | Sentence accuracy % | Rasa entity F1 "
        "| Intent errors (of all) | Training (export) | Training's peak RSS | Archive "
        "| p50 / p95 per message "
        "| `rasa test nlu` | Cores busy, training / parsing | Source |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    if ours:
        seeds = sum(name.startswith("ours") for name in runs)
        mean = functools.partial(_mean, ours)

        lines.append(
            f"| **rasa-bert-intent, mean of {_seeds(seeds)}** "
            f"| **{mean('accuracy')}** ({ours['accuracy']['min']:.2f}–"
            f"{ours['accuracy']['max']:.2f}) | **{mean('slot_f1')}** "
            f"| **{mean('sentence_accuracy')}** | {mean('rasa_entity_f1')} "
            f"| {ours['errors']['mean']:.1f} ({ours['errors_of_all_test_queries']['mean']:.1f}) "
            f"| {ours['train_seconds']['mean'] / 60:.1f} min ({mean('export_seconds')} s) "
            f"| {ours['train_peak_rss_mb']['mean']:,.0f} MiB "
            f"| {ours['archive_mb']['mean']:.0f} MB "
            f"| {ours['latency_p50_ms']['mean']:.2f} / {ours['latency_p95_ms']['mean']:.2f} ms "
            f"| {mean('test_seconds')} s | | measured |"
        )
    for name, r in runs.items():
        lines.append(
            f"| {name} | {r['accuracy']:.2f} | {_figure(r.get('slot_f1'))} "
            f"| {_figure(r.get('sentence_accuracy'))} | {_figure(r.get('rasa_entity_f1'))} "
            f"| {r['errors']} ({r['errors_of_all_test_queries']}) "
            f"| {r['train_seconds'] / 60:.1f} min{_export(r)} "
            f"| {r['train_peak_rss_mb']:,} MiB | {r['archive_mb']:.0f} MB "
            f"| {r['latency_p50_ms']:.2f} / {r['latency_p95_ms']:.2f} ms "
            f"| {_figure(r.get('test_seconds'), 1)} s "
            f"| {r['train_cpu_cores_busy']:.1f} / {r['latency_cpu_cores_busy']:.1f} | measured |"
        )
    for system, accuracy, slot_f1, sentence in PUBLISHED:
        lines.append(
            f"| {system} | {accuracy:.2f} | {_figure(slot_f1, 1)} | {_figure(sentence, 1)} "
            f"| | | | | | | | | published, not measured |"
        )
    lines += out_of_scope_table(results)
    for fold, data in results.get("hwu64", {}).items():
        lines += hwu64_table(fold, data)
    for name, r in runs.items():
        lines += ["", f"Misclassified by {name}:", ""]
        lines += [
            f"- \"{e['text']}\": {e['intent']} predicted {e['predicted']} "
            f"({e['confidence']:.2f})"
            for e in r["misclassified"]
        ]
        lines += ["", f"Slot errors of {name} ({len(r.get('slot_errors', []))} queries):", ""]
        if r.get("slot_error_kinds"):
            lines[-2] += " By kind: " + ", ".join(
                f"{kind} {count}" for kind, count in r["slot_error_kinds"].items()
            ) + "."
        if r.get("word_rule_changed") is not None:
            lines[-2] += (
                f" The word rule (no entity cuts a token at inner punctuation) changed the "
                f"entities of {r['word_rule_changed']} test queries."
            )
        lines += [
            f"- \"{e['text']}\": expected {_spans_text(e['text'], e['expected'])}, "
            f"predicted {_spans_text(e['text'], e['predicted'])}"
            for e in r.get("slot_errors", [])
        ]
    return "\n".join(lines) + "\n"


def hwu64_table(fold, data: Dict) -> List[str]:
    """An HWU64 fold's figures: ours as the mean of the seeds first, then each run."""
    runs, ours = data["runs"], data["ours"]
    lines = [
        "",
        f"HWU64 fold {fold}: trained on its train.json, tested on its {data['test_queries']} "
        f"test queries (each distinct query once). Entity F1 is span level; falling back: "
        f"config.yml's FallbackClassifier.",
        "",
        "| System | Intent accuracy % | Entity F1 | Sentence accuracy % | Rasa entity F1 "
        "| Test queries falling back % | Training (export) | Training's peak RSS "
        "| p50 / p95 per message |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    if ours:
        seeds = sum("-ours-" in name for name in runs)
        mean = functools.partial(_mean, ours)

        lines.append(
            f"| **rasa-bert-intent, mean of {_seeds(seeds)}** | **{mean('accuracy')}** "
            f"| **{mean('slot_f1')}** | **{mean('sentence_accuracy')}** "
            f"| {mean('rasa_entity_f1')} | {mean('in_scope_fallback_pct')} "
            f"| {ours['train_seconds']['mean'] / 60:.1f} min ({mean('export_seconds')} s) "
            f"| {ours['train_peak_rss_mb']['mean']:,.0f} MiB "
            f"| {ours['latency_p50_ms']['mean']:.2f} / {ours['latency_p95_ms']['mean']:.2f} ms |"
        )
    for name, r in runs.items():
        lines.append(
            f"| {name} | {r['accuracy']:.2f} | {_figure(r.get('slot_f1'))} "
            f"| {_figure(r.get('sentence_accuracy'))} | {_figure(r.get('rasa_entity_f1'))} "
            f"| {_figure(r.get('in_scope_fallback_pct'))} "
            f"| {r['train_seconds'] / 60:.1f} min{_export(r)} | {r['train_peak_rss_mb']:,} MiB "
            f"| {r['latency_p50_ms']:.2f} / {r['latency_p95_ms']:.2f} ms |"
        )
    lines.append("")
    for name, r in runs.items():
        kinds = ", ".join(f"{k} {n}" for k, n in (r.get("slot_error_kinds") or {}).items())
        rule = r.get("word_rule_changed")
        lines.append(
            f"- {name}: {len(r.get('slot_errors', []))} queries with a slot error"
            + (f"; by kind: {kinds}" if kinds else "")
            + ("" if rule is None else f"; the word rule changed {rule} queries' entities")
            + "."
        )
    return lines


def out_of_scope_table(results: Dict) -> List[str]:
    """The fallback of in-scope and out-of-scope messages, ours as mean of the seeds first."""
    runs, ours = results["runs"], results["ours"]
    measured = [r for r in runs.values() if "oos_auroc" in r]  # not in reused older runs
    if not measured:
        return []
    first = measured[0]
    by_set = first["out_of_scope_fallback_pct_by_set"]
    lines = [
        "",
        f"Out of scope: {first['out_of_scope_messages']} messages that fit none of the 7 "
        f"intents (benchmark/out_of_scope.py: CLINC150's out-of-scope queries and its queries "
        f"of 136 other intents, and benchmark/out_of_scope.yml), judged by config.yml's "
        f"FallbackClassifier (threshold {first['fallback_threshold']}, ambiguity threshold "
        f"{first['ambiguity_threshold']}). AUROC: of the top confidence, SNIPS test against "
        f"out of scope. Recall at 95% kept: out-of-scope share below the confidence that 95% "
        f"of the test queries reach.",
        "",
        "| System | SNIPS test falling back % | Out of scope falling back % | "
        + " | ".join(by_set)
        + " | AUROC | Recall at 95% kept % |",
        "|---|---|---|" + "---|" * len(by_set) + "---|---|",
    ]
    if "oos_auroc" in ours:
        seeds = sum(name.startswith("ours") for name in runs)
        mean = functools.partial(_mean, ours)
        lines.append(
            f"| **rasa-bert-intent, mean of {_seeds(seeds)}** "
            f"| **{mean('in_scope_fallback_pct')}** | **{mean('out_of_scope_fallback_pct')}** | "
            + " | " * (len(by_set) - 1)
            + f" | **{mean('oos_auroc', 4)}** | {mean('oos_recall_at_95_pct_kept')} |"
        )
    for name, r in runs.items():
        if "oos_auroc" not in r:  # a run.json of an earlier benchmark, reused
            continue
        lines.append(
            f"| {name} | {r['in_scope_fallback_pct']:.2f} | {r['out_of_scope_fallback_pct']:.2f} | "
            + " | ".join(f"{r['out_of_scope_fallback_pct_by_set'][k]:.1f}" for k in by_set)
            + f" | {r['oos_auroc']:.4f} | {r['oos_recall_at_95_pct_kept']:.2f} |"
        )
    for name, r in runs.items():
        kept = r.get("out_of_scope_kept", [])
        lines += ["", f"Out-of-scope messages {name} let through ({len(kept)}):", ""]
        lines += [
            f"- \"{e['text']}\" ({e['set']}/{e['kind']}): {e['intent']['name']} "
            f"({e['intent']['confidence']:.2f})"
            for e in kept
        ]
    return lines


def _figure(value, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _mean(summary: Dict, key: str, digits: int = 2) -> str:
    """A figure's mean ± standard deviation over our seeds; empty if a run lacks it."""
    f = summary.get(key)
    return "" if f is None else f"{f['mean']:.{digits}f} ± {f['stdev']:.{digits}f}"


def _seeds(count: int) -> str:
    return f"{count} seed" if count == 1 else f"{count} seeds"


def _export(run: Dict) -> str:
    """The export's seconds of a run, in parentheses, if it had one."""
    seconds = run.get("export_seconds")
    return "" if seconds is None else f" ({seconds:.1f} s)"


def _spans_text(text: str, entity_spans: List) -> str:
    return ", ".join(f"{entity}: '{text[start:end]}'" for start, end, entity in entity_spans) or "none"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--table"]:  # rewrites results.md from an existing results.json
        results_json = Path(sys.argv[2])
        table = markdown(json.loads(results_json.read_text(encoding="utf-8")))
        results_json.with_name("results.md").write_text(table, encoding="utf-8")
        print(table)
    else:
        main()
