"""`rasa init`'s starter assistant, as a newcomer tries the component: its 68 examples of 7
intents, our component with its defaults in place of the default pipeline, `rasa train`, then
`rasa test core --e2e`, which parses the user text of each test story with the NLU."""

import shutil
from pathlib import Path

import pytest
import yaml
from helpers.rasa_cli import rasa

PIPELINE = [
    {"name": "rasa_bert_intent.BertIntentClassifier"},
    {"name": "FallbackClassifier", "threshold": 0.5, "ambiguity_threshold": 0.1},
]
# For speed only: the starter's policies are all comments, so Rasa would add its defaults, whose
# TEDPolicy trains 100 epochs: 142 s for this test, 49 s without (2026-12-03). `--e2e` fails a story
# whose user text gets the wrong intent whatever predicts the actions; these two policies play
# the starter's stories and rules as written.
POLICIES = [{"name": "MemoizationPolicy"}, {"name": "RulePolicy"}]


@pytest.fixture(scope="module")
def starter(tmp_path_factory) -> Path:
    """The files `rasa init --no-prompt` writes, with our pipeline (and POLICIES), trained by
    `rasa train`."""
    from rasa.cli.scaffold import create_initial_project

    project = tmp_path_factory.mktemp("starter")
    # What `rasa init` copies; `rasa init --no-prompt` would also train DIET's pipeline first,
    # minutes of a test run spent on a model this test replaces.
    create_initial_project(str(project))
    config = yaml.safe_load((project / "config.yml").read_text(encoding="utf-8"))
    assert config.get("pipeline") is None  # the starter's pipeline is all comments
    config["pipeline"] = PIPELINE
    config["policies"] = POLICIES
    (project / "config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    rasa(project, "train", "--fixed-model-name", "starter")
    return project


def test_the_starter_assistant_passes_every_test_story(starter):
    stories = yaml.safe_load((starter / "tests" / "test_stories.yml").read_text())["stories"]
    assert len(stories) == 7
    rasa(starter, "test", "core", "--stories", "tests/test_stories.yml", "--e2e",
         "--model", "models/starter.tar.gz", "--out", "results")
    failed = (starter / "results" / "failed_test_stories.yml").read_text(encoding="utf-8")
    assert "None of the test stories failed - all good!" in failed, failed


def test_rasa_train_finetune_of_the_starter_still_passes_every_test_story(starter, tmp_path):
    """The starter grows by an example and is fine-tuned, NLU and dialogue, with `rasa train
    --finetune` (in a copy: the test above reads the original)."""
    project = tmp_path / "starter"
    shutil.copytree(starter, project, ignore=shutil.ignore_patterns("results", ".rasa"))
    nlu = project / "data" / "nlu.yml"
    text = nlu.read_text(encoding="utf-8")
    assert "    - hey\n" in text
    nlu.write_text(text.replace("    - hey\n", "    - hey\n    - hey, nice to see you\n", 1), "utf-8")
    completed = rasa(project, "train", "--finetune", "models/starter.tar.gz",
                     "--epoch-fraction", "0.5", "--fixed-model-name", "finetuned")
    assert (
        "fine-tuning from the previous model: 20 of its 40 passes, 69 examples, 1 new; batch 16"
        in completed.stdout + completed.stderr
    )
    rasa(project, "test", "core", "--stories", "tests/test_stories.yml", "--e2e",
         "--model", "models/finetuned.tar.gz", "--out", "results")
    failed = (project / "results" / "failed_test_stories.yml").read_text(encoding="utf-8")
    assert "None of the test stories failed - all good!" in failed, failed
