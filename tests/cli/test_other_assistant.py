"""The component dropped into someone else's assistant in DIET's place: intents and entities
(a synonym mapped, a role), retrieval intents, stories, fallback."""

import asyncio
import textwrap
from pathlib import Path

import pytest
from helpers.rasa_cli import rasa
from helpers.assistants import EXAMPLES, nlu_yaml

CONFIG = """
recipe: default.v1
assistant_id: someone-elses-bot
language: en
pipeline:
  # Tokens and features only for ResponseSelector; ours reads the raw text.
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: rasa_bert_intent.BertIntentClassifier
  - name: EntitySynonymMapper
  - name: FallbackClassifier
    threshold: 0.7
  # Fewer epochs than its 100 only to keep the test fast; it is not the component under test.
  - name: ResponseSelector
    epochs: 20
policies:
  - name: RulePolicy
  - name: MemoizationPolicy
"""

NLU = """
version: "3.1"
nlu:
{greet_goodbye}- intent: weather
  examples: |
    - will it rain in [Paris](city) tomorrow
    - what is the weather in [Berlin](city)
    - is it sunny in [Rome](city) today
    - how cold is it in [Oslo](city)
    - forecast for [NYC]{"entity": "city", "value": "New York"} this weekend
    - will it snow in [Madrid](city)
    - weather in [London](city) please
    - is it windy in [Vienna](city)
- intent: book_flight
  examples: |
    - fly from [Paris]{"entity": "city", "role": "from"} to [Rome]{"entity": "city", "role": "to"}
    - a flight from [Berlin]{"entity": "city", "role": "from"} to [Oslo]{"entity": "city", "role": "to"}
    - book me a flight from [Madrid]{"entity": "city", "role": "from"} to [London]{"entity": "city", "role": "to"}
    - I need to fly from [Vienna]{"entity": "city", "role": "from"} to [Paris]{"entity": "city", "role": "to"}
    - flights from [Rome]{"entity": "city", "role": "from"} to [Berlin]{"entity": "city", "role": "to"} please
    - get me from [Oslo]{"entity": "city", "role": "from"} to [Madrid]{"entity": "city", "role": "to"} by plane
- intent: chitchat/ask_name
  examples: |
    - what is your name
    - who are you
    - what should I call you
- intent: chitchat/ask_age
  examples: |
    - how old are you
    - what is your age
    - when were you born
""".replace(
    "{greet_goodbye}", nlu_yaml({intent: EXAMPLES[intent] for intent in ("greet", "goodbye")})
)

DOMAIN = """
version: "3.1"
intents:
  - greet
  - goodbye
  - weather
  - book_flight
  - chitchat
entities:
  - city:
      roles:
        - from
        - to
responses:
  utter_greet:
    - text: "Hello!"
  utter_goodbye:
    - text: "Bye!"
  utter_weather:
    - text: "Sunny, probably."
  utter_book_flight:
    - text: "Booked."
  utter_chitchat/ask_name:
    - text: "I'm a bot."
  utter_chitchat/ask_age:
    - text: "Young."
  utter_default:
    - text: "Sorry?"
actions:
  - utter_chitchat
"""

STORIES = """
version: "3.1"
stories:
- story: greet then weather
  steps:
  - intent: greet
  - action: utter_greet
  - intent: weather
  - action: utter_weather
- story: flight
  steps:
  - intent: book_flight
  - action: utter_book_flight
rules:
- rule: chitchat
  steps:
  - intent: chitchat
  - action: utter_chitchat
- rule: goodbye
  steps:
  - intent: goodbye
  - action: utter_goodbye
"""


@pytest.fixture(scope="module")
def assistant(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("other-assistant")
    (project / "data").mkdir()
    for path, text in {
        "config.yml": CONFIG,
        "domain.yml": DOMAIN,
        "data/nlu.yml": NLU,
        "data/stories.yml": STORIES,
    }.items():
        (project / path).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    # The assistant's own custom components; they must not hide the installed package.
    (project / "components").mkdir()
    (project / "components" / "__init__.py").write_text("")
    (project / "components" / "my_component.py").write_text("MARKER = 'theirs'\n")
    rasa(project, "train", "--fixed-model-name", "theirs")
    return project / "models" / "theirs.tar.gz"


def parse(model: Path, texts):
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    return [asyncio.run(agent.parse_message(text)) for text in texts]


def test_our_intents_and_entities_with_synonyms_roles_response_selection_and_fallback(
    assistant,
):
    texts = [
        "will it rain in Paris",
        "forecast for NYC this weekend",
        "fly from Paris to Rome",
        "hello there, good morning",
        "what is your name",
    ]
    gibberish_texts = ["zzz qqq xkcd", "purple elephant quantum"]
    weather, synonym, flight, greet, name, *gibberish = parse(assistant, texts + gibberish_texts)
    assert weather["intent"]["name"] == "weather"
    assert [(e["entity"], e["value"], e["extractor"]) for e in weather["entities"]] == [
        ("city", "Paris", "BertIntentClassifier")
    ]
    (nyc,) = synonym["entities"]
    assert (nyc["value"], nyc["start"], nyc["end"]) == ("New York", 13, 16)
    assert nyc["processors"] == ["EntitySynonymMapper"]
    assert flight["intent"]["name"] == "book_flight"
    assert [(e["value"], e["role"]) for e in flight["entities"]] == [
        ("Paris", "from"),
        ("Rome", "to"),
    ]
    assert greet["intent"]["name"] == "greet" and greet["entities"] == []
    assert name["intent"]["name"] == "chitchat"
    assert (
        name["response_selector"]["default"]["response"]["intent_response_key"]
        == "chitchat/ask_name"
    )
    assert {r["name"] for r in weather["intent_ranking"]} >= {
        "greet",
        "goodbye",
        "weather",
        "book_flight",
        "chitchat",
    }
    # FallbackClassifier acts on our confidences: below its threshold of 0.7 it answers
    # nlu_fallback, as it does for the messages that belong to none of the intents.
    for result in [weather, synonym, flight, greet, name, *gibberish]:
        ours = next(r for r in result["intent_ranking"] if r["name"] != "nlu_fallback")
        assert (result["intent"]["name"] == "nlu_fallback") == (ours["confidence"] < 0.7)
    assert [r["intent"]["name"] for r in gibberish] == ["nlu_fallback"] * len(gibberish)
