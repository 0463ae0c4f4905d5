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


# A second, smaller assistant for out-of-scope handling: 4 intents of 15 examples each, with
# messages it never saw in training, of its intents and of none.
SHOP_EXAMPLES: Dict[str, List[str]] = {
    "order_pizza": [
        "i want to order a pizza",
        "can i get a large margherita",
        "one pepperoni pizza please",
        "order two pizzas for delivery",
        "i'd like a medium hawaiian",
        "get me a vegetarian pizza",
        "a small cheese pizza to go",
        "put in an order for three large pizzas",
        "can you deliver a pizza to my place",
        "i'll have the four cheese pizza",
        "order a family size pizza with mushrooms",
        "i want a pizza with extra olives",
        "two margheritas and a garlic bread",
        "send me a spicy salami pizza",
        "i'm hungry, order me a pizza",
    ],
    "track_order": [
        "where is my order",
        "how long until my pizza arrives",
        "has my order left the shop yet",
        "track my delivery",
        "when will my food get here",
        "is my pizza on its way",
        "what's the status of my order",
        "my order is late, where is it",
        "how far away is the driver",
        "did you start making my pizza",
        "check on my delivery please",
        "it's been an hour, where's my food",
        "estimated delivery time for my order",
        "is my order ready for pickup",
        "has the driver picked up my pizza",
    ],
    "opening_hours": [
        "when are you open",
        "what are your opening hours",
        "are you open on sunday",
        "what time do you close tonight",
        "are you open late on fridays",
        "when do you open in the morning",
        "are you open on public holidays",
        "until what time can i order",
        "what time does the shop open",
        "are you open right now",
        "do you deliver after midnight",
        "what are your hours on saturday",
        "is the shop closed on mondays",
        "how late are you open",
        "opening times please",
    ],
    "cancel_order": [
        "cancel my order",
        "i want to cancel the pizza i ordered",
        "please stop my delivery",
        "i changed my mind, cancel it",
        "can i still cancel my order",
        "don't send the pizza",
        "call off my order please",
        "i no longer want the food i ordered",
        "cancel the delivery",
        "scrap my last order",
        "i ordered by mistake, please cancel",
        "revoke my pizza order",
        "forget my order",
        "i need to cancel order number 1234",
        "undo my order",
    ],
}

# Unseen messages of the shop's intents, and of none.
SHOP_IN_SCOPE: Dict[str, List[str]] = {
    "order_pizza": [
        "could i order a pizza with ham and pineapple",
        "a large pepperoni for delivery please",
        "i would like to get two medium pizzas",
        "one margherita to take away",
    ],
    "track_order": [
        "where's my pizza",
        "how much longer for my delivery",
        "is the delivery driver close",
        "any update on my order",
    ],
    "opening_hours": [
        "what time do you open on saturdays",
        "are you open tomorrow evening",
        "when does the shop close",
        "are you open on christmas day",
    ],
    "cancel_order": [
        "please cancel my pizza",
        "i don't want my order anymore",
        "can you cancel what i ordered",
        "stop my order please",
    ],
}
SHOP_OUT_OF_SCOPE: List[str] = [
    "what's the weather like in paris",
    "play some jazz music",
    "book a flight to london",
    "what is my bank balance",
    "tell me a joke",
    "who won the football match last night",
    "set an alarm for 7 am",
    "how tall is the eiffel tower",
    "translate hello into spanish",
    "what's the capital of australia",
    "remind me to call my mother",
    "how do i reset my password",
    "asdf qwerty",
    "jjjjjjjj",
    "https://www.example.com",
    "SELECT * FROM users;",
    "😂😂😂",
    "wo ist der bahnhof",
    "je ne comprends pas",
    "¿dónde está el baño?",
]


def unbalanced_shop() -> Dict[str, List[str]]:
    """The shop with one common intent and three rare ones: its 15 pizza orders and 144 more
    beside the first 8 examples of each other intent, as assistants grow where their traffic
    is."""
    openings = ["i want", "can i get", "i'd like", "please send me", "order me", "get me"]
    sizes = ["a small", "a medium", "a large", "two large"]
    pizzas = ["margherita", "pepperoni pizza", "hawaiian", "veggie pizza", "four cheese", "calzone"]
    orders = [f"{o} {s} {p}" for o in openings for s in sizes for p in pizzas]
    rare = {intent: texts[:8] for intent, texts in SHOP_EXAMPLES.items() if intent != "order_pizza"}
    return {"order_pizza": SHOP_EXAMPLES["order_pizza"] + orders, **rare}


# Retrieval intents (chitchat and an FAQ) beside EXAMPLES' intents, and their responses.
RETRIEVAL_EXAMPLES: Dict[str, List[str]] = {
    "chitchat/ask_name": [
        "what's your name", "what is your name", "who are you", "tell me your name",
        "what should I call you", "do you have a name",
    ],
    "chitchat/ask_age": [
        "how old are you", "what's your age", "when were you born", "are you old",
        "how long have you existed", "what is your age",
    ],
    "faq/opening_hours": [
        "when are you open", "what are your opening hours", "are you open on sundays",
        "until when are you open", "what time do you close", "when do you open in the morning",
    ],
    "faq/delivery": [
        "do you deliver", "can I get it delivered", "how much is delivery",
        "do you ship to my address", "is delivery free", "how long does delivery take",
    ],
}
RETRIEVAL_RESPONSES = {
    "utter_chitchat/ask_name": [{"text": "I'm Bert, a bot."}],
    "utter_chitchat/ask_age": [{"text": "Old enough to talk."}],
    "utter_faq/opening_hours": [{"text": "From 9 to 5, every day."}],
    "utter_faq/delivery": [{"text": "We deliver for free."}],
}
