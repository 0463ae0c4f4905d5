"""Retrieval intents (FAQs, chitchat) answered by the component alone, beside the pipeline the
README recommended before: the component for intents and entities, Rasa's ResponseSelector for
the responses.

A development assistant built from an HWU64 fold's train.json (never its test.json): the
intents of the `general` and `qa` scenarios become the retrieval intents `general` and `qa`,
each intent one response key (`general_joke` is `general/joke`, answered by `utter_general/joke`);
the other 49 intents stay plain. K examples per intent train; DEV others per intent are the
development queries. Each pipeline is trained with `rasa train nlu --domain` (the responses are
the domain's) and tested with `rasa test nlu`; printed: response selection errors (Rasa's
report: each query's own retrieval intent), base intent accuracy, Rasa's per-token entity F1,
training time and peak memory.

    .venv/bin/python benchmark/retrieval_benchmark.py --hwu ../shared/nlu-evaluation-data
"""

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

import systems
from learning_curve import per_intent

RETRIEVAL_SCENARIOS = ("general", "qa")
OURS = {"name": "rasa_bert_intent.BertIntentClassifier"}
# The README's pipeline for an assistant with FAQs until the component answered them.
PIPELINES = {
    "ours + ResponseSelector": [
        {"name": "WhitespaceTokenizer"},
        {"name": "CountVectorsFeaturizer"},
        OURS,
        {"name": "ResponseSelector", "epochs": 100},
    ],
    "ours alone": [OURS],
    # What the component alone learnt before it answered retrieval intents: their examples as
    # plain intents (`general`, `qa`), so no responses selected.
    "ours, plain intents": [OURS],
}


def response_key(intent: str) -> str:
    """HWU64's intent as the response key of its scenario's retrieval intent, if it has one."""
    scenario, _, rest = intent.partition("_")
    return f"{scenario}/{rest}" if scenario in RETRIEVAL_SCENARIOS else intent


def write_assistant(examples, folder: Path) -> None:
    """The NLU examples (entity markup kept) as a YAML file, the same with the retrieval
    intents as plain intents, and the domain with a response for each response key."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.training_data import TrainingData

    keys = [response_key(message.get("intent")) for message in examples]
    for message, key in zip(examples, keys):
        message.set("intent", key.split("/")[0])
    (folder / "nlu_plain.yml").write_text(RasaYAMLWriter().dumps(TrainingData(examples)))
    for message, key in zip(examples, keys):
        if "/" in key:
            message.set("intent_response_key", key)
    (folder / "nlu.yml").write_text(RasaYAMLWriter().dumps(TrainingData(examples)))
    domain = {
        "version": "3.1",
        "intents": sorted({m.get("intent") for m in examples}),
        "responses": {f"utter_{key}": [{"text": f"the answer to {key}"}]
                      for key in sorted(set(keys)) if "/" in key},
    }
    (folder / "domain.yml").write_text(yaml.safe_dump(domain))


def evaluate(name: str, pipeline, folder: Path) -> dict:
    """Trains and tests one pipeline on the assistant in `folder`; its figures."""
    out = folder / name.replace(" ", "_").replace("+", "and").replace(",", "")
    nlu = folder / ("nlu_plain.yml" if name == "ours, plain intents" else "nlu.yml")
    out.mkdir(parents=True, exist_ok=True)
    config = {"recipe": "default.v1", "language": "en", "pipeline": pipeline}
    (out / "config.yml").write_text(json.dumps(config))
    train = systems.run([
        systems.RASA, "train", "nlu", "--config", str(out / "config.yml"), "--nlu",
        str(nlu), "--domain", str(folder / "domain.yml"), "--out", str(out),
        "--fixed-model-name", "model",
    ])
    systems.run([
        systems.RASA, "test", "nlu", "--nlu", str(folder / "dev.yml"), "--model",
        str(out / "model.tar.gz"), "--out", str(out / "report"),
    ])
    report = out / "report"
    # Plain intents select no responses: Rasa's report would count every query wrong.
    responses_file = report / "response_selection_report.json"
    selects = responses_file.exists() and nlu.name == "nlu.yml"
    responses = json.loads(responses_file.read_text()) if selects else {}
    errors_file = report / "response_selection_errors.json"
    errors = json.loads(errors_file.read_text()) if errors_file.exists() else []
    entities = json.loads((report / "BertIntentClassifier_report.json").read_text())
    return {
        "response_errors": len(errors) if responses else None,
        "response_accuracy": 100 * responses["accuracy"] if responses else None,
        "intent_accuracy": 100 * json.loads((report / "intent_report.json").read_text())[
            "accuracy"
        ],
        "entity_f1": 100 * entities["micro avg"]["f1-score"],
        "train_seconds": train["seconds"],
        "train_peak_rss_mb": train["peak_rss_mb"],
    }


def prepare(hwu: Path, fold: int, per_intent_k: int, dev_k: int, seed: int, folder: Path) -> int:
    """The assistant of one draw written into `folder`; the number of retrieval dev queries."""
    from rasa.shared.nlu.training_data.loading import load_data

    pool = load_data(str(hwu / f"fold{fold:02d}" / "train.json")).nlu_examples
    train = per_intent(pool, per_intent_k, seed)
    chosen = {id(m) for m in train}
    dev = per_intent([m for m in pool if id(m) not in chosen], dev_k, seed)
    folder.mkdir(parents=True, exist_ok=True)
    write_assistant(train, folder)
    (folder / "dev").mkdir(exist_ok=True)
    write_assistant(dev, folder / "dev")
    (folder / "dev.yml").write_text((folder / "dev" / "nlu.yml").read_text())
    print(f"seed {seed}: {len(train)} training examples, {len(dev)} dev queries")
    return sum(1 for m in dev if m.get("intent_response_key"))


def cell(runs, key: str, digits: int = 1) -> str:
    """The mean of the runs' figure, each run's in brackets."""
    values = [run[key] for run in runs]
    if None in values:
        return "–"
    mean = sum(values) / len(values)
    return f"{mean:.{digits}f} ({', '.join(f'{v:.{digits}f}' for v in values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hwu", type=Path, required=True, help="the HWU64 folder")
    parser.add_argument("--fold", type=int, default=1)
    parser.add_argument("--per-intent", type=int, default=30, help="training examples (K)")
    parser.add_argument("--dev-per-intent", type=int, default=20, help="development queries")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    parser.add_argument("--out", type=Path, default=Path("results/retrieval"))
    parser.add_argument("--pipelines", nargs="+", default=list(PIPELINES), choices=PIPELINES)
    args = parser.parse_args()
    # Each training timed in full: Rasa's cache would reuse the components of a run before.
    os.environ["RASA_MAX_CACHE_SIZE"] = "0"
    out = args.out.resolve()
    runs = {name: [] for name in args.pipelines}
    for seed in args.seeds:
        folder = out / f"seed{seed}"
        retrieval = prepare(
            args.hwu, args.fold, args.per_intent, args.dev_per_intent, seed, folder
        )
        for name in args.pipelines:
            runs[name].append({**evaluate(name, PIPELINES[name], folder), "queries": retrieval})
    (out / "results.json").write_text(json.dumps(runs, indent=2))
    print(f"HWU64 fold {args.fold}, {args.per_intent} per intent, seeds {args.seeds}: mean (each)")
    print("| pipeline | response errors | of queries | intent acc % | entity F1 | train s | "
          "peak MB |")
    print("|---|---|---|---|---|---|---|")
    for name, results in runs.items():
        print(f"| {name} | {cell(results, 'response_errors')} | {cell(results, 'queries', 0)} | "
              f"{cell(results, 'intent_accuracy')} | {cell(results, 'entity_f1')} | "
              f"{cell(results, 'train_seconds', 0)} | {cell(results, 'train_peak_rss_mb', 0)} |")


if __name__ == "__main__":
    sys.exit(main())
