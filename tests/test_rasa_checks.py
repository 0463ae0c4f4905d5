"""Rasa's own checks told about the component: new labels in a fine-tune only where no other
component learns labels."""

from rasa_bert_intent import BertIntentClassifier


def test_rasa_keeps_refusing_new_labels_where_another_component_learns_them():
    from rasa.engine.graph import GraphSchema, SchemaNode
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
        CountVectorsFeaturizer,
    )
    from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer

    from rasa_bert_intent.rasa_checks import only_growing_learners

    def schema(*classes):
        return GraphSchema({
            f"train_{index}": SchemaNode({}, uses, "create", "train", {})
            for index, uses in enumerate(classes)
        })

    assert only_growing_learners(
        schema(WhitespaceTokenizer, CountVectorsFeaturizer, BertIntentClassifier),
        BertIntentClassifier,
    )
    assert not only_growing_learners(
        schema(CountVectorsFeaturizer, BertIntentClassifier, DIETClassifier), BertIntentClassifier
    )
