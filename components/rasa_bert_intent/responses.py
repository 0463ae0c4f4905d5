"""Retrieval intents (FAQs, chitchat) learnt in the same pass as the intents: the network's labels
are the plain intents and the retrieval intents' response keys (`faq/ask_price`); an intent's
confidence is the sum of its labels', and each retrieval intent ranks its own response keys.
No Rasa objects."""

from typing import Dict, List, Sequence, Tuple

import numpy as np

# Rasa's separator of a retrieval intent and its response key (`faq/ask_price`).
DELIMITER = "/"


def intent_of(label: str) -> str:
    """The intent Rasa sees for a label: a response key's retrieval intent, else the label."""
    return label.split(DELIMITER, 1)[0]


def utter_action(label: str) -> str:
    """The response a response key answers with, as Rasa names it (`utter_faq/ask_price`)."""
    return f"utter_{label}"


class LabelGroups:
    """The network's labels grouped into the intents Rasa sees."""

    def __init__(self, labels: Sequence[str]) -> None:
        """Groups `labels`, in the network's order."""
        self.labels = list(labels)
        self.intents = sorted({intent_of(label) for label in self.labels})
        index = {intent: column for column, intent in enumerate(self.intents)}
        self._intent_columns = np.array([index[intent_of(label)] for label in self.labels], int)
        self.retrieval_intents: Dict[str, np.ndarray] = {}
        for row, label in enumerate(self.labels):
            if DELIMITER in label:
                rows = self.retrieval_intents.get(intent_of(label), np.zeros(0, int))
                self.retrieval_intents[intent_of(label)] = np.append(rows, row)

    def intent_confidences(self, confidences: np.ndarray) -> np.ndarray:
        """Each intent's confidence `[messages, intents]`: the sum of its labels'."""
        if not self.retrieval_intents:
            return confidences
        summed = np.zeros((len(confidences), len(self.intents)), confidences.dtype)
        np.add.at(summed.T, self._intent_columns, confidences.T)
        return summed

    def response_ranking(
        self, confidences: np.ndarray, retrieval_intent: str
    ) -> List[Tuple[str, float]]:
        """The response keys of `retrieval_intent` for one message's label `confidences`, best
        first: each key's share of its retrieval intent's confidence, times the message's
        in-scope factor (the sum of all confidences, 1 without one)."""
        rows = self.retrieval_intents[retrieval_intent]
        within = confidences[rows].astype(np.float64)
        total = float(np.sum(confidences, dtype=np.float64))
        shares = within / within.sum() if within.sum() > 0 else np.full(len(rows), 1 / len(rows))
        order = np.argsort(-shares, kind="stable")
        return [(self.labels[rows[i]], float(shares[i] * total)) for i in order]
