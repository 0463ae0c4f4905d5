"""What the component writes into a Rasa message: `intent` and `intent_ranking` as Rasa's
classifiers write them, and `response_selector` as Rasa's ResponseSelector writes it, so that
retrieval actions, `rasa test nlu` and `rasa shell` read it unchanged."""

from typing import Any, Dict, List, Optional

import numpy as np
from rasa.nlu.constants import (
    RESPONSE_SELECTOR_PREDICTION_KEY,
    RESPONSE_SELECTOR_PROPERTY_NAME,
    RESPONSE_SELECTOR_RANKING_KEY,
    RESPONSE_SELECTOR_RESPONSES_KEY,
    RESPONSE_SELECTOR_RETRIEVAL_INTENTS,
    RESPONSE_SELECTOR_UTTER_ACTION_KEY,
)
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_RANKING_KEY,
    INTENT_RESPONSE_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from rasa_bert_intent.responses import LabelGroups, utter_action


def set_intent(
    message: Message, groups: LabelGroups, confidences: Optional[np.ndarray], ranking_length: int
) -> None:
    """`intent` and `intent_ranking` (`ranking_length` of them; 0: all) of the labels'
    `confidences`; no intent without them."""
    if confidences is None or not groups.intents:
        message.set(INTENT, {"name": None, "confidence": 0.0}, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [], add_to_output=True)
        return
    by_intent = groups.intent_confidences(confidences[None])[0]
    ranking = [
        {"name": groups.intents[column], "confidence": float(by_intent[column])}
        for column in np.argsort(-by_intent, kind="stable")
    ]
    message.set(INTENT, ranking[0], add_to_output=True)
    if ranking_length > 0:
        ranking = ranking[:ranking_length]
    message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)


def set_responses(
    message: Message,
    groups: LabelGroups,
    confidences: np.ndarray,
    responses: Dict[str, List[Dict[str, Any]]],
    ranking_length: int,
) -> None:
    """Each retrieval intent's best response key with its responses, and its ranking, added to
    what other selectors wrote; nothing without retrieval intents."""
    if not groups.retrieval_intents:
        return
    selected = dict(message.get(RESPONSE_SELECTOR_PROPERTY_NAME) or {})
    retrieval_intents = set(selected.get(RESPONSE_SELECTOR_RETRIEVAL_INTENTS) or [])
    selected[RESPONSE_SELECTOR_RETRIEVAL_INTENTS] = sorted(
        retrieval_intents | set(groups.retrieval_intents)
    )
    for retrieval_intent in groups.retrieval_intents:
        ranking = groups.response_ranking(confidences, retrieval_intent)
        key, confidence = ranking[0]
        if ranking_length > 0:
            ranking = ranking[:ranking_length]
        selected[retrieval_intent] = {
            RESPONSE_SELECTOR_PREDICTION_KEY: {
                # Rasa's ResponseSelector answers with the key itself where the domain has no
                # responses for it (training warned).
                RESPONSE_SELECTOR_RESPONSES_KEY: responses.get(key) or [{TEXT: key}],
                PREDICTED_CONFIDENCE_KEY: confidence,
                INTENT_RESPONSE_KEY: key,
                RESPONSE_SELECTOR_UTTER_ACTION_KEY: utter_action(key),
            },
            RESPONSE_SELECTOR_RANKING_KEY: [
                {PREDICTED_CONFIDENCE_KEY: value, INTENT_RESPONSE_KEY: name}
                for name, value in ranking
            ],
        }
    message.set(RESPONSE_SELECTOR_PROPERTY_NAME, selected, add_to_output=True)
