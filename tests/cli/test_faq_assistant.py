"""`rasa init`'s starter with a chitchat retrieval intent of two responses, and the component
alone in the pipeline (no tokenizer, featurizer or ResponseSelector): `rasa train`, e2e test
stories of the full retrieval intents and the assistant's answer, `rasa test nlu`'s response
selection report, and `rasa train nlu --finetune` with a new response key (which Rasa refuses
with the dialogue)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers.rasa_cli import RASA, rasa

PIPELINE = [
    {"name": "rasa_bert_intent.BertIntentClassifier"},
    {"name": "FallbackClassifier", "threshold": 0.5, "ambiguity_threshold": 0.1},
]
# As test_starter_assistant.py's, for speed: the stories and rules as written.
POLICIES = [{"name": "MemoizationPolicy"}, {"name": "RulePolicy"}]
CHITCHAT = {
    "ask_name": ["what's your name", "what is your name", "tell me your name",
                 "what should I call you", "do you have a name", "how should I address you"],
    "ask_age": ["how old are you", "what's your age", "when were you born",
                "what is your age", "are you young or old", "how long have you been around"],
}
HOBBY = ["what are your hobbies", "what do you do for fun", "do you have a hobby",
         "what do you like doing", "how do you spend your free time", "any hobbies"]


def add_chitchat(project: Path, keys: dict) -> None:
    """The retrieval intent's examples, responses, a rule that answers it and a test story
    for each key."""
    with (project / "data" / "nlu.yml").open("a", encoding="utf-8") as nlu:
        for key, texts in keys.items():
            nlu.write(f"\n- intent: chitchat/{key}\n  examples: |\n")
            nlu.writelines(f"    - {text}\n" for text in texts)
    domain = yaml.safe_load((project / "domain.yml").read_text(encoding="utf-8"))
    if "chitchat" not in domain["intents"]:
        domain["intents"].append("chitchat")
    for key in keys:
        domain["responses"][f"utter_chitchat/{key}"] = [{"text": f"chitchat answer: {key}"}]
    (project / "domain.yml").write_text(yaml.safe_dump(domain), encoding="utf-8")
    rules = yaml.safe_load((project / "data" / "rules.yml").read_text(encoding="utf-8"))
    rule = {"rule": "answer chitchat", "steps": [{"intent": "chitchat"},
                                                 {"action": "utter_chitchat"}]}
    if rule not in rules["rules"]:
        rules["rules"].append(rule)
    (project / "data" / "rules.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    stories_file = project / "tests" / "test_stories.yml"
    stories = yaml.safe_load(stories_file.read_text(encoding="utf-8"))
    paraphrases = {"ask_name": "what do people call you", "ask_age": "what age are you",
                   "ask_hobby": "what hobbies do you have"}
    for key in keys:
        # Rasa's e2e test compares a full retrieval intent with the selected response's key;
        # the bot turn is the retrieval action (a full `utter_chitchat/<key>` would pass, but
        # the tracker then holds an action the domain lacks, and no rule predicts the next).
        stories["stories"].append({"story": f"chitchat {key}", "steps": [
            {"user": paraphrases[key], "intent": f"chitchat/{key}"},
            {"action": "utter_chitchat"},
        ]})
    stories_file.write_text(yaml.safe_dump(stories), encoding="utf-8")


def passes_every_test_story(project: Path, model: str) -> None:
    rasa(project, "test", "core", "--stories", "tests/test_stories.yml", "--e2e",
         "--model", model, "--out", "results")
    failed = (project / "results" / "failed_test_stories.yml").read_text(encoding="utf-8")
    assert "None of the test stories failed - all good!" in failed, failed


@pytest.fixture(scope="module")
def faq_starter(tmp_path_factory) -> Path:
    from rasa.cli.scaffold import create_initial_project

    project = tmp_path_factory.mktemp("faq-starter")
    create_initial_project(str(project))
    config = yaml.safe_load((project / "config.yml").read_text(encoding="utf-8"))
    config["pipeline"], config["policies"] = PIPELINE, POLICIES
    (project / "config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    add_chitchat(project, CHITCHAT)
    rasa(project, "train", "--fixed-model-name", "faq")
    return project


def bot_replies(model: Path, text: str) -> list:
    """What the assistant answers to `text`, as `rasa shell` shows it."""
    import asyncio

    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    return [reply.get("text") for reply in asyncio.run(agent.handle_text(text))]


def parse(model: Path, text: str) -> dict:
    """What `rasa shell nlu` prints for `text`."""
    import asyncio

    from rasa.core.agent import Agent

    return asyncio.run(Agent.load(str(model)).parse_message(text))


def test_the_selected_response_answers_in_every_test_story(faq_starter):
    stories = yaml.safe_load((faq_starter / "tests" / "test_stories.yml").read_text())["stories"]
    assert len(stories) == 9  # the starter's 7 and one for each chitchat key
    passes_every_test_story(faq_starter, "models/faq.tar.gz")
    model = faq_starter / "models" / "faq.tar.gz"
    assert bot_replies(model, "what do people call you") == ["chitchat answer: ask_name"]
    assert bot_replies(model, "what age are you") == ["chitchat answer: ask_age"]


def test_rasa_test_nlu_writes_a_response_selection_report(faq_starter, tmp_path):
    held_out = tmp_path / "test_nlu.yml"
    held_out.write_text(
        'version: "3.1"\nnlu:\n'
        "- intent: chitchat/ask_name\n  examples: |\n    - what do people call you\n"
        "    - what name do you go by\n"
        "- intent: chitchat/ask_age\n  examples: |\n    - what age are you\n"
        "    - how many years old are you\n"
        "- intent: greet\n  examples: |\n    - hello there\n",
        encoding="utf-8",
    )
    rasa(faq_starter, "test", "nlu", "--nlu", str(held_out), "--model", "models/faq.tar.gz",
         "--out", str(tmp_path / "results"))
    report = json.loads((tmp_path / "results" / "response_selection_report.json").read_text())
    assert report["accuracy"] >= 0.75, report
    assert set(report) >= {"chitchat/ask_name", "chitchat/ask_age"}
    intents = json.loads((tmp_path / "results" / "intent_report.json").read_text())
    assert intents["accuracy"] == 1.0, intents


def test_rasa_train_nlu_finetune_learns_a_new_response_key(faq_starter, tmp_path):
    project = tmp_path / "faq-starter"
    shutil.copytree(faq_starter, project, ignore=shutil.ignore_patterns("results", ".rasa"))
    # `rasa train nlu` reads the responses from the domain only when given it, as it does for
    # Rasa's ResponseSelector; it fine-tunes an NLU model only.
    rasa(project, "train", "nlu", "--domain", "domain.yml", "--fixed-model-name", "faq-nlu")
    add_chitchat(project, {"ask_hobby": HOBBY})
    completed = rasa(project, "train", "nlu", "--domain", "domain.yml", "--finetune",
                     "models/faq-nlu.tar.gz", "--epoch-fraction", "0.5",
                     "--fixed-model-name", "finetuned")
    log = completed.stdout + completed.stderr
    assert "new intents: chitchat/ask_hobby" in log
    assert "does not include a response selector component" not in log
    parsed = parse(project / "models" / "finetuned.tar.gz", "what hobbies do you have")
    assert parsed["intent"]["name"] == "chitchat"
    response = parsed["response_selector"]["chitchat"]["response"]
    assert response["intent_response_key"] == "chitchat/ask_hobby"
    assert response["responses"] == [{"text": "chitchat answer: ask_hobby"}]


def test_rasa_train_finetune_with_the_dialogue_refuses_a_new_response_key(faq_starter, tmp_path):
    """A new response shifts the actions the policies were trained on (a fine-tune let through
    predicted `utter_chitchat/ask_name` for `utter_greet`), so Rasa refuses it, as it refuses a
    new intent; `rasa train nlu --finetune` takes it (above)."""
    project = tmp_path / "faq-starter"
    shutil.copytree(faq_starter, project, ignore=shutil.ignore_patterns("results", ".rasa"))
    add_chitchat(project, {"ask_hobby": HOBBY})
    refused = subprocess.run(
        [RASA, "train", "--finetune", "models/faq.tar.gz", "--fixed-model-name", "again"],
        cwd=project, capture_output=True, text=True, timeout=600,
    )
    assert refused.returncode != 0
    assert "keys that affect the training of core components have changed" in (
        refused.stdout + refused.stderr
    )
