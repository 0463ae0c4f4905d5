"""Training without Rasa: examples in, a served model and what a fine-tune continues from out."""

import numpy as np
from helpers.bert_reference import tiny_hf_weights, write_hf_folder

from rasa_bert_intent import training
from rasa_bert_intent.entities import labels_in
from rasa_bert_intent.pretrained.encoder import load_pretrained
from rasa_bert_intent.settings import Settings
from rasa_bert_intent.training import Example

WEATHER = {"start": 0, "end": 4, "entity": "weather"}
EXAMPLES = [
    Example("hello", "greet"),
    Example("hi", "greet"),
    Example("good hello", "greet"),
    Example("rain tomorrow", "weather", [WEATHER]),
    Example("snow", "weather"),
    Example("will it rain", "weather"),
    Example("rainsome", "weather", [WEATHER]),  # "rain" inside a word: no tags to train
]


def test_training_gives_a_served_model_and_what_a_fine_tune_continues_from(tmp_path, caplog):
    folder = write_hf_folder(tmp_path / "tiny-bert", tiny_hf_weights())
    pretrained = load_pretrained(str(folder))
    # A tiny random encoder, for the plumbing only: a short run that judges no quality.
    settings = Settings.from_config({"model": str(folder), "epochs": 2, "max_seq_len": 16})
    intents, labels = ["greet", "weather"], labels_in([e.entities for e in EXAMPLES])
    # The training module's own logger: the component sets its level from Rasa's.
    with caplog.at_level("INFO", logger=training.__name__):
        served = training.train(
            EXAMPLES, intents, labels, pretrained, dict(pretrained.config), settings,
            show_progress=False,
        )
    assert "7 examples of 2 intents: 2 epochs of batch 8" in caplog.text
    assert "1 of 7 training examples have entity annotations" in caplog.text
    assert "example 'rainsome'" in caplog.text
    assert (served.intents, served.entity_labels) == (intents, [("weather", None, None)])
    assert (served.predictor.num_intents, served.predictor.num_entity_tags) == (2, 3)
    assert served.predictor.precision == "int8" and served.predictor.max_seq_len == 16
    token_ids = [served.tokenizer.token_ids(text, 16) for text in ("hello", "rain", "")]
    outputs = served.predictor.predict(token_ids)
    confidences = served.confidences(outputs, [len(ids) for ids in token_ids])
    assert confidences.shape == (3, 2) and np.all((0 <= confidences) & (confidences <= 1 + 1e-6))
    state = served.finetune_state
    assert (state.intents, state.entity_labels, state.epochs) == (intents, served.entity_labels, 2)
    assert len(state.example_hashes) == len(EXAMPLES)
    trained = {"logits/kernel", "entity_tag_logits/kernel", "encoder/layer_1/output/dense/kernel"}
    assert trained <= set(state.weights)
    # The word table stays as pretrained by default: a fine-tune reads it from the encoder.
    assert "embeddings/word_embeddings/embeddings" not in state.weights
    # As trained: the files keep them compact (finetune.compact).
    assert all(value.dtype == np.float32 for value in state.weights.values())


def test_the_encoder_as_pretrained_is_read_under_the_networks_names(tmp_path):
    folder = write_hf_folder(tmp_path / "tiny-bert", tiny_hf_weights())
    weights = training.pretrained_weights(load_pretrained(str(folder)))
    assert "encoder/layer_1/intermediate/kernel" in weights
    assert weights["embeddings/word_embeddings/embeddings"].shape == (28, 16)
