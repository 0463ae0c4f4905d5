"""How often the decoder's word rule (entities.joined_words: no entity cuts a token at inner
punctuation, "Show-Biz", "A.j.") changed the entities of our component's predictions."""

import tempfile
from pathlib import Path
from typing import Optional, Sequence

from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage

from rasa_bert_intent import BertIntentClassifier
from rasa_bert_intent import entities as entity_tags


def changed(model_archive: str, texts: Sequence[str]) -> Optional[int]:
    """The texts whose entities the model predicts otherwise without the word rule; None if the
    archive has no trained BertIntentClassifier that predicts entities."""
    with tempfile.TemporaryDirectory() as folder:
        storage, metadata = LocalModelStorage.from_model_archive(Path(folder), model_archive)
        node = next(
            (n for n in metadata.predict_schema.nodes.values() if n.uses is BertIntentClassifier),
            None,
        )
        if node is None or node.resource is None:
            return None
        context = ExecutionContext(metadata.predict_schema, metadata.model_id)
        trained = BertIntentClassifier.load(node.config, storage, node.resource, context).trained
    if trained is None or not trained.entity_labels:
        return None
    max_seq_len = trained.predictor.max_seq_len
    encodings = [trained.tokenizer.encode(text, max_seq_len) for text in texts]
    outputs = trained.predictor.predict([e.token_ids for e in encodings])
    count = 0
    for text, encoding, tags in zip(texts, encodings, outputs.tag_probabilities):
        on_words = tags[encoding.first_pieces]
        found = [
            entity_tags.decode(
                text, encoding.words, on_words, trained.entity_labels,
                trained.entity_transitions, word_rule,
            )
            for word_rule in (True, False)
        ]
        count += found[0] != found[1]
    return count
