"""Fine-tuned BERT intent classification as a Rasa 3 NLU component."""

from rasa_bert_intent.classifier import BertIntentClassifier

__all__ = ["BertIntentClassifier"]
