"""A small set of intent examples shared by the tests, as Python data and as Rasa NLU YAML."""

from typing import Dict, List

EXAMPLES: Dict[str, List[str]] = {
    "greet": ["hello there", "hi", "good morning", "hey, how are you", "hello friend", "hi there!"],
    "goodbye": ["bye", "see you later", "good night", "goodbye, take care", "farewell", "bye bye"],
    "weather": [
        "will it rain tomorrow",
        "what is the weather in [Paris](city)",
        "is it sunny today",
        "how cold is it outside",
        "forecast for [Berlin](city) this weekend",
        "will it snow in [Oslo](city)",
    ],
}


def nlu_yaml(examples: Dict[str, List[str]]) -> str:
    """The examples as the `nlu:` entries of a Rasa NLU YAML file (entity markup kept)."""
    lines = []
    for intent, texts in examples.items():
        lines += [f"- intent: {intent}", "  examples: |"] + [f"    - {text}" for text in texts]
    return "\n".join(lines) + "\n"


# Entities with roles, groups and adjacent entities of one type, in Rasa NLU YAML.
TRIPS_NLU = """version: "3.1"
nlu:
- intent: book_trip
  examples: |
    - fly from [Berlin]{"entity": "city", "role": "departure"} to [Oslo]{"entity": "city", "role": "destination"}
    - a flight from [Paris]{"entity": "city", "role": "departure"} to [Rome]{"entity": "city", "role": "destination"}
    - from [Madrid]{"entity": "city", "role": "departure"} to [Vienna]{"entity": "city", "role": "destination"} please
    - book a trip from [London]{"entity": "city", "role": "departure"} to [Lisbon]{"entity": "city", "role": "destination"}
    - I want to go from [Prague]{"entity": "city", "role": "departure"} to [Athens]{"entity": "city", "role": "destination"}
    - travel from [Dublin]{"entity": "city", "role": "departure"} to [Warsaw]{"entity": "city", "role": "destination"}
    - fly from [New York]{"entity": "city", "role": "departure"} to [San Francisco]{"entity": "city", "role": "destination"}
    - take me from [Zurich]{"entity": "city", "role": "departure"} to [Budapest]{"entity": "city", "role": "destination"}
- intent: order_food
  examples: |
    - a [large]{"entity": "size", "group": "1"} [pizza]{"entity": "food", "group": "1"} and a [small]{"entity": "size", "group": "2"} [salad]{"entity": "food", "group": "2"}
    - one [small]{"entity": "size", "group": "1"} [soup]{"entity": "food", "group": "1"} and one [large]{"entity": "size", "group": "2"} [burger]{"entity": "food", "group": "2"}
    - I'd like a [large]{"entity": "size", "group": "1"} [salad]{"entity": "food", "group": "1"}
    - get me a [small]{"entity": "size", "group": "1"} [pizza]{"entity": "food", "group": "1"} and a [large]{"entity": "size", "group": "2"} [soup]{"entity": "food", "group": "2"}
    - order [pizza](food) [pasta](food) [salad](food)
    - [soup](food) [burger](food) please
    - I want [pasta](food) [pizza](food)
    - [burger](food) [salad](food) [soup](food) for dinner
- intent: greet
  examples: |
    - hello there
    - hi
    - good morning
    - hey, how are you
    - hello friend
    - hi there!
"""
