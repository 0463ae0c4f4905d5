"""End to end through Rasa's own command line: `rasa train nlu`, then `rasa shell nlu`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rasa_cli import RASA, rasa
from small_assistant import EXAMPLES, nlu_yaml

NLU = 'version: "3.1"\nnlu:\n' + nlu_yaml(EXAMPLES)

CONFIG = """recipe: default.v1
assistant_id: cli-test
language: en
pipeline:
  - name: rasa_bert_intent.BertIntentClassifier
    ranking_length: 0
"""


def parse_results(output: str):
    """The JSON parse results `rasa shell nlu` printed between its other lines."""
    decoder, results, position = json.JSONDecoder(), [], 0
    while True:
        position = output.find("{\n", position)
        if position < 0:
            return results
        result, position = decoder.raw_decode(output, position)
        results.append(result)


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("assistant")
    (project / "data").mkdir()
    (project / "data" / "nlu.yml").write_text(NLU, encoding="utf-8")
    (project / "config.yml").write_text(CONFIG, encoding="utf-8")
    completed = rasa(project, "train", "nlu", "--fixed-model-name", "cli-test", timeout=900)
    log = completed.stdout + completed.stderr
    assert "Finished training component 'BertIntentClassifier'" in log
    (project / "train.log").write_text(log, encoding="utf-8")
    return project / "models" / "cli-test.tar.gz"


def test_the_training_log_says_what_schedule_the_data_got(trained_model):
    log = (trained_model.parent.parent / "train.log").read_text(encoding="utf-8")
    assert (
        "BertIntentClassifier: 18 examples of 3 intents: 40 epochs of batch 8, about 120 steps "
        "(chosen for the data's size)." in log
    )


def test_rasa_shell_nlu_prints_intent_full_ranking_and_entities(trained_model):
    lines = [
        "hello, good morning",
        "will it snow in Oslo",
        "see you later, bye",
        "",
    ]
    completed = subprocess.run(
        [RASA, "shell", "nlu", "--model", str(trained_model)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = parse_results(completed.stdout)
    assert [r["text"] for r in results] == lines
    assert [r["intent"]["name"] for r in results[:3]] == ["greet", "weather", "goodbye"]
    for result in results:
        assert {r["name"] for r in result["intent_ranking"]} == {"greet", "goodbye", "weather"}
        assert result["intent"] == result["intent_ranking"][0]
        assert 0.0 <= result["intent"]["confidence"] <= 1.0
    (city,) = results[1]["entities"]
    assert (city["entity"], city["start"], city["end"], city["value"]) == ("city", 16, 20, "Oslo")
    assert city["extractor"] == "BertIntentClassifier"
    assert [r["entities"] for r in (results[0], results[2], results[3])] == [[], [], []]


def test_training_again_restores_the_classifier_from_rasa_cache(trained_model):
    completed = rasa(
        trained_model.parent.parent, "train", "nlu", "--fixed-model-name", "cli-test-again",
        timeout=900,
    )
    assert (
        "Restored component 'BertIntentClassifier' from cache"
        in completed.stdout + completed.stderr
    )


def test_server_under_bounded_load_answers_every_request(trained_model):
    """A smaller run of benchmark/load_test.py: 8 clients, ordinary and hostile texts."""
    script = Path(__file__).resolve().parents[1] / "benchmark" / "load_test.py"
    completed = subprocess.run(
        [
            sys.executable,
            str(script),
            "--model",
            str(trained_model),
            "--clients",
            "8",
            "--requests",
            "240",
            "--request-timeout",
            "30",
            "--run-timeout",
            "400",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr[-2000:]
    assert "240 answered, 0 errors" in completed.stdout
    assert "server log: 0 lines written while under load" in completed.stdout  # no warning flood
