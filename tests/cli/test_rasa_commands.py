"""End to end through Rasa's own command line: `rasa train nlu`, then `rasa shell nlu`."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.rasa_cli import RASA, rasa
from helpers.assistants import EXAMPLES, nlu_yaml

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


def copy_of_project(trained_model: Path, tmp_path: Path) -> Path:
    """The assistant's files and its trained model, copied to change them freely."""
    project = tmp_path / "assistant"
    for name in ("config.yml", "data/nlu.yml", f"models/{trained_model.name}"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(trained_model.parent.parent / name, project / name)
    return project


def add_examples(project: Path, intent: str, *texts: str) -> None:
    nlu = project / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text(encoding="utf-8") + nlu_yaml({intent: list(texts)}), "utf-8")


THANKS = ["thank you", "thanks a lot", "many thanks", "thanks, that helps", "cheers, thanks",
          "thank you very much"]


def test_rasa_train_nlu_finetune_learns_an_added_example_and_a_new_intent(trained_model, tmp_path):
    project = copy_of_project(trained_model, tmp_path)
    add_examples(project, "greet", "greetings to you")
    add_examples(project, "thank", *THANKS)
    completed = rasa(
        project, "train", "nlu", "--finetune", f"models/{trained_model.name}",
        "--epoch-fraction", "0.5", "--fixed-model-name", "finetuned", timeout=900,
    )
    assert (
        "BertIntentClassifier: fine-tuning from the previous model: 20 of its 40 passes, "
        "25 examples, 7 new (6 of new labels, each in 2 copies a pass), new intents: thank; "
        "batch 16, about 40 steps; the embeddings and bottom 2 layers held as they were."
        in completed.stdout + completed.stderr
    )
    lines = ["greetings to you", "thanks a million", "will it snow in Oslo", "see you later, bye"]
    shell = rasa(project, "shell", "nlu", "--model", "models/finetuned.tar.gz",
                 input="\n".join(lines) + "\n\n")
    results = parse_results(shell.stdout)
    assert [r["intent"]["name"] for r in results[:4]] == ["greet", "thank", "weather", "goodbye"]
    assert [(e["entity"], e["value"]) for e in results[2]["entities"]] == [("city", "Oslo")]


def test_rasa_train_finetune_applies_the_fraction_to_set_epochs(trained_model, tmp_path):
    # Plumbing: 4 set epochs only to keep the test fast; the defaults are the test above.
    project = copy_of_project(trained_model, tmp_path)
    (project / "config.yml").write_text(CONFIG + "    epochs: 4\n", encoding="utf-8")
    rasa(project, "train", "nlu", "--fixed-model-name", "four", timeout=900)
    for fraction, passes in ((None, 4), ("0.5", 2)):
        fraction_option = ["--epoch-fraction", fraction] if fraction else []
        completed = rasa(
            project, "train", "nlu", "--finetune", "models/four.tar.gz", *fraction_option,
            timeout=900,
        )
        assert (
            f"fine-tuning from the previous model: {passes} of its 4 passes, 18 examples, 0 new"
            in completed.stdout + completed.stderr
        )


def test_server_under_bounded_load_answers_every_request(trained_model):
    """A smaller run of benchmark/load_test.py: 8 clients, ordinary and hostile texts."""
    script = Path(__file__).resolve().parents[2] / "benchmark" / "load_test.py"
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
