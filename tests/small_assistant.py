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
