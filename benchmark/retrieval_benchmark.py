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
}


def response_key(intent: str) -> str:
    """HWU64's intent as the response key of its scenario's retrieval intent, if it has one."""
    scenario, _, rest = intent.partition("_")
    return f"{scenario}/{rest}" if scenario in RETRIEVAL_SCENARIOS else intent


def write_assistant(examples, folder: Path) -> None:
    """The NLU examples (entity markup kept) as a YAML file, and the domain with a response
    for each response key."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.training_data import TrainingData

    for message in examples:
        intent = message.get("intent")
        if response_key(intent) != intent:
            message.set("intent", response_key(intent).split("/")[0])
            message.set("intent_response_key", response_key(intent))
    (folder / "nlu.yml").write_text(RasaYAMLWriter().dumps(TrainingData(examples)))
    keys = sorted({m.get("intent_response_key") for m in examples} - {None})
    domain = {
        "version": "3.1",
        "intents": sorted({m.get("intent") for m in examples}),
        "responses": {f"utter_{key}": [{"text": f"the answer to {key}"}] for key in keys},
    }
    (folder / "domain.yml").write_text(yaml.safe_dump(domain))


def evaluate(name: str, pipeline, folder: Path) -> dict:
    """Trains and tests one pipeline on the assistant in `folder`; its figures."""
    out = folder / name.replace(" ", "_").replace("+", "and")
    out.mkdir(parents=True, exist_ok=True)
    config = {"recipe": "default.v1", "language": "en", "pipeline": pipeline}
    (out / "config.yml").write_text(json.dumps(config))
    train = systems.run([
        systems.RASA, "train", "nlu", "--config", str(out / "config.yml"), "--nlu",
        str(folder / "nlu.yml"), "--domain", str(folder / "domain.yml"), "--out", str(out),
        "--fixed-model-name", "model",
    ])
    systems.run([
        systems.RASA, "test", "nlu", "--nlu", str(folder / "dev.yml"), "--model",
        str(out / "model.tar.gz"), "--out", str(out / "report"),
    ])
    report = out / "report"
    responses = json.loads((report / "response_selection_report.json").read_text())
    errors_file = report / "response_selection_errors.json"
    errors = json.loads(errors_file.read_text()) if errors_file.exists() else []
    entities = json.loads((report / "BertIntentClassifier_report.json").read_text())
    return {
        "response_errors": len(errors),
        "response_accuracy": 100 * responses["accuracy"],
        "intent_accuracy": 100 * json.loads((report / "intent_report.json").read_text())[
            "accuracy"
        ],
        "entity_f1": 100 * entities["micro avg"]["f1-score"],
        "train_seconds": train["seconds"],
        "train_peak_rss_mb": train["peak_rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hwu", type=Path, required=True, help="the HWU64 folder")
    parser.add_argument("--fold", type=int, default=1)
    parser.add_argument("--per-intent", type=int, default=30, help="training examples (K)")
    parser.add_argument("--dev-per-intent", type=int, default=20, help="development queries")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("results/retrieval"))
    parser.add_argument("--pipelines", nargs="+", default=list(PIPELINES), choices=PIPELINES)
    args = parser.parse_args()
    args.out = args.out.resolve()
    from rasa.shared.nlu.training_data.loading import load_data

    pool = load_data(str(args.hwu / f"fold{args.fold:02d}" / "train.json")).nlu_examples
    train = per_intent(pool, args.per_intent, args.seed)
    chosen = {id(m) for m in train}
    dev = per_intent([m for m in pool if id(m) not in chosen], args.dev_per_intent, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_assistant(train, args.out)
    dev_folder = args.out / "dev"
    dev_folder.mkdir(exist_ok=True)
    write_assistant(dev, dev_folder)
    (args.out / "dev.yml").write_text((dev_folder / "nlu.yml").read_text())
    retrieval = sum(1 for m in dev if m.get("intent_response_key"))
    print(f"{len(train)} training examples, {len(dev)} dev queries ({retrieval} retrieval)")
    results = {name: evaluate(name, PIPELINES[name], args.out) for name in args.pipelines}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print("| pipeline | response errors | response acc % | intent acc % | entity F1 | "
          "train s | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['response_errors']} of {retrieval} | {r['response_accuracy']:.1f} | "
              f"{r['intent_accuracy']:.1f} | {r['entity_f1']:.1f} | {r['train_seconds']:.0f} | "
              f"{r['train_peak_rss_mb']} |")


if __name__ == "__main__":
    sys.exit(main())
