"""One way to train, test, time and score a Rasa NLU system, for every benchmark here.

`benchmark()` trains a pipeline with `rasa train nlu`, tests it with `rasa test nlu` (Rasa's
reports, confusion matrix and per-token entity report), then loads the archive into a Rasa
`Agent` in a process of its own that parses the test queries one at a time for latency and
the out-of-scope messages of out_of_scope.py; from those parses come the span-level slot F1,
sentence accuracy and the fallback figures of config.yml's FallbackClassifier.
"""

import asyncio
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

import out_of_scope
from slot_metrics import slot_scores, spans

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
RASA = str(Path(sys.executable).with_name("rasa"))
WARM_UP_MESSAGES = 50
# What our component logs after its export (export.predictors); DIET has no export.
EXPORT_LOG = re.compile(rb"exported the network to ONNX \(\w+\) and loaded it in ([0-9.]+) s")

OURS = [{"name": "rasa_bert_intent.BertIntentClassifier"}]
# Rasa's recommended default NLU pipeline (the one `rasa init` writes), intent and entity parts.
DIET = [
    {"name": "WhitespaceTokenizer"},
    {"name": "RegexFeaturizer"},
    {"name": "LexicalSyntacticFeaturizer"},
    {"name": "CountVectorsFeaturizer"},
    {
        "name": "CountVectorsFeaturizer",
        "analyzer": "char_wb",
        "min_ngram": 1,
        "max_ngram": 4,
    },
    {"name": "DIETClassifier", "epochs": 100, "constrain_similarities": True},
]

def benchmark(
    name: str,
    pipeline: List[Dict],
    train_file: Path,
    test_file: Path,
    test_query_counts: Counter,
    out: Path,
    with_out_of_scope: bool = True,
    code: Optional[Path] = None,
) -> Dict:
    """Trains, tests and times one system; returns its figures. Without `with_out_of_scope`
    the out-of-scope messages are not parsed, and only the test queries' fallback is given.
    `code`: a folder of another version of the `rasa_bert_intent` package to run instead."""
    env = None if code is None else {**os.environ, "PYTHONPATH": str(code)}
    folder = out / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = {
        "recipe": "default.v1",
        "assistant_id": f"benchmark-{name}",
        "language": "en",
        "pipeline": pipeline,
    }
    (folder / "config.yml").write_text(json.dumps(config, indent=2))  # JSON is YAML

    train = run(
        [
            RASA,
            "train",
            "nlu",
            "--config",
            str(folder / "config.yml"),
            "--nlu",
            str(train_file),
            "--out",
            str(folder),
            "--fixed-model-name",
            "model",
        ],
        keep_stderr=True,
        env=env,
    )
    export = EXPORT_LOG.search(train["stderr"])
    model = folder / "model.tar.gz"
    tested = run(
        [
            RASA,
            "test",
            "nlu",
            "--nlu",
            str(test_file),
            "--model",
            str(model),
            "--out",
            str(folder / "report"),
        ],
        env=env,
    )
    report = json.loads((folder / "report/intent_report.json").read_text())
    errors_file = folder / "report/intent_errors.json"  # written only if there are errors
    errors = json.loads(errors_file.read_text()) if errors_file.exists() else []
    shutil.copyfile(
        folder / "report/intent_confusion_matrix.png",
        out / f"confusion_matrix_{name}.png",
    )
    predictions_file = folder / "predictions.json"
    measured = run(
        [sys.executable, __file__, "--latency", str(model), str(test_file), str(predictions_file)]
        + ([] if with_out_of_scope else ["--no-out-of-scope"]),
        capture=True,
        env=env,
    )
    latency = json.loads(measured["stdout"].strip().splitlines()[-1])
    predictions = json.loads(predictions_file.read_text(encoding="utf-8"))
    slots = slot_figures(test_file, predictions["in_scope"])
    if with_out_of_scope:
        scope = out_of_scope.figures(predictions["in_scope"], predictions["out_of_scope"])
    else:
        fallback = out_of_scope.shipped_fallback()
        scope = {"in_scope_fallback_pct": 100 * statistics.mean(
            out_of_scope.falls_back(fallback, p) for p in predictions["in_scope"]
        )}
    # Rasa's entity report: per token, one file for each extractor that predicted entities.
    entity_reports = [
        path
        for path in (folder / "report").glob("*_report.json")
        if path.name not in ("intent_report.json", "response_selection_report.json")
    ]
    rasa_entity_f1 = (
        100 * json.loads(entity_reports[0].read_text())["micro avg"]["f1-score"]
        if entity_reports
        else None
    )

    return {
        "accuracy": 100 * report["accuracy"],
        "macro_f1": report["macro avg"]["f1-score"],
        "errors": len(errors),
        "distinct_test_queries": int(report["micro avg"]["support"]),
        # Rasa tests each distinct query once; on all 700, a repeated query counts each time.
        "errors_of_all_test_queries": sum(test_query_counts[e["text"]] for e in errors),
        "misclassified": [
            {
                "text": e["text"],
                "intent": e["intent"],
                "predicted": e["intent_prediction"]["name"],
                "confidence": round(e["intent_prediction"]["confidence"], 4),
            }
            for e in errors
        ],
        **slots,
        "rasa_entity_report": entity_reports[0].name if entity_reports else None,
        "rasa_entity_f1": rasa_entity_f1,
        "train_seconds": train["seconds"],
        "train_peak_rss_mb": train["peak_rss_mb"],
        "train_cpu_cores_busy": train["cores_busy"],
        "export_seconds": float(export.group(1)) if export else None,
        # `rasa test nlu`, start to end: loading the model, then parsing each distinct query.
        "test_seconds": tested["seconds"],
        "archive_mb": model.stat().st_size / 1e6,
        **latency,
        **scope,
    }


def run(
    command: List[str],
    capture: bool = False,
    keep_stderr: bool = False,
    env: Optional[Dict[str, str]] = None,
) -> Dict:
    """Runs a command (in `env`, by default this one); its wall time, peak memory and CPU use,
    and what it printed if captured (stdout) or kept (stderr, which is still shown as it
    comes)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=REPOSITORY,
        env=env,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if keep_stderr else None,
        text=capture,
    )
    stdout, stderr = "", bytearray()
    if capture:
        stdout = process.stdout.read()
    elif keep_stderr:
        for chunk in iter(lambda: process.stderr.read1(1 << 16), b""):
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
            stderr += chunk
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"benchmark: `{' '.join(command)}` failed with status {status}")
    return {
        "stdout": stdout,
        "stderr": bytes(stderr),
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),  # the command and the children it waited for
        "cores_busy": round((usage.ru_utime + usage.ru_stime) / seconds, 2),
    }


def slot_figures(test_file: Path, predictions: List[Dict]) -> Dict:
    """Slot F1 and sentence accuracy of the parsed test queries against their annotations;
    None for a system that extracts no entities."""
    from rasa.shared.nlu.training_data.loading import load_data

    if not any(p["entities"] for p in predictions):
        return {"slot_f1": None, "sentence_accuracy": None, "slot_errors": []}

    expected = {m.get("text"): m for m in load_data(str(test_file)).intent_examples}
    scores = slot_scores(
        [spans(expected[p["text"]].get("entities") or []) for p in predictions],
        [spans(p["entities"]) for p in predictions],
        [p["intent"]["name"] == expected[p["text"]].get("intent") for p in predictions],
    )
    slot_errors = [
        {
            "text": p["text"],
            "expected": spans(expected[p["text"]].get("entities") or []),
            "predicted": spans(p["entities"]),
        }
        for p in predictions
        if spans(expected[p["text"]].get("entities") or []) != spans(p["entities"])
    ]
    return {**scores, "slot_errors": slot_errors}


def latency(model: str, test_file: str, predictions_file: str, *flags: str) -> None:
    """Prints the per-message latency of `Agent.parse_message` over the test queries, as JSON,
    and writes each test query's and (unless `--no-out-of-scope`) each out-of-scope message's
    predicted intent, ranking and entities to `predictions_file`."""
    import logging

    from rasa.core.agent import Agent
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.utils.log_utils import configure_structlog

    # As `rasa run` does by default; without it every parse is printed at debug level.
    configure_structlog(logging.WARNING)

    texts = [m.get("text") for m in load_data(test_file).intent_examples]
    agent = Agent.load(model)

    predictions = []

    def prediction(text: str, parsed: Dict) -> Dict:
        return {
            "text": text,
            "intent": parsed["intent"],
            "ranking": parsed["intent_ranking"][:2],
            "entities": [
                {key: e[key] for key in ("start", "end", "entity")} for e in parsed["entities"]
            ],
        }

    async def parse_all() -> List[float]:
        for text in texts[:WARM_UP_MESSAGES]:
            await agent.parse_message(text)
        seconds = []
        for text in texts:
            started = time.perf_counter()
            parsed = await agent.parse_message(text)
            seconds.append(time.perf_counter() - started)
            predictions.append(prediction(text, parsed))
        return seconds

    async def parse_out_of_scope() -> List[Dict]:
        parsed = []
        for name, (oos_texts, kinds) in out_of_scope.read_out_of_scope().items():
            for text, kind in zip(oos_texts, kinds):
                result = prediction(text, await agent.parse_message(text))
                parsed.append({**result, "set": name, "kind": kind})
        return parsed

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    seconds = sorted(asyncio.run(parse_all()))
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    Path(predictions_file).write_text(
        json.dumps(
            {
                "in_scope": predictions,
                "out_of_scope": [] if flags else asyncio.run(parse_out_of_scope()),
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    import word_rule

    changed = word_rule.changed(model, texts)
    threads = next(
        int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("Threads:")
    )
    print(
        json.dumps(
            {
                "latency_messages": len(seconds),
                "latency_p50_ms": round(1000 * seconds[len(seconds) // 2], 2),
                "latency_p95_ms": round(1000 * seconds[int(0.95 * (len(seconds) - 1))], 2),
                "latency_cpu_cores_busy": round(cpu / wall, 2),
                "process_threads": threads,
                # Test queries whose entities the decoder's word rule changed (ours only).
                "word_rule_changed": changed,
            }
        )
    )


def machine() -> Dict:
    """What the benchmark ran on."""
    import rasa
    import tensorflow as tf

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:")
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "gpu": bool(tf.config.list_physical_devices("GPU")),
        "python": platform.python_version(),
        "rasa": rasa.__version__,
        "tensorflow": tf.__version__,
        "platform": platform.platform(),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--latency"]:
        latency(*sys.argv[2:])
