"""The settings: defaults merged and checked once; each bad value refused, naming the setting,
before anything trains; what the encoder or the trained model does not allow, where it is read."""

import dataclasses

import pytest
from helpers.components import config_of, create, training_data
from rasa.shared.exceptions import InvalidConfigException

from rasa_bert_intent import BertIntentClassifier
from rasa_bert_intent.settings import FINETUNING_EPOCH_FRACTION, Settings, default_config


def test_settings_are_the_defaults_merged_typed_and_frozen():
    settings = Settings.from_config({"num_layers": 2})
    assert settings.num_layers == 2 and settings.max_seq_len == default_config()["max_seq_len"]
    assert set(default_config()) == {
        field.name for field in dataclasses.fields(Settings)
    } - {FINETUNING_EPOCH_FRACTION}
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.epochs = 3
    # Configs written before 0 meant "follow the data" said null.
    assert Settings.from_config({"epochs": None}).epochs == 0
    # Rasa puts the fraction of `rasa train --finetune --epoch-fraction` into the config.
    assert Settings.from_config({FINETUNING_EPOCH_FRACTION: 0.25}).finetuning_epoch_fraction == 0.25
    assert Settings.from_config({}).finetuning_epoch_fraction == 1.0
    with pytest.raises(InvalidConfigException, match=f"'{FINETUNING_EPOCH_FRACTION}'"):
        Settings.from_config({FINETUNING_EPOCH_FRACTION: -1})
    off = Settings.from_config({"entity_loss_weight": 0})
    assert not off.predicts_entities and Settings.from_config({}).predicts_entities


@pytest.mark.parametrize(
    "setting, value",
    [
        ("epochs", -1),
        ("epochs", "3"),
        ("batch_size", -1),
        ("max_seq_len", 2),
        ("num_layers", 0),
        ("num_layers", "2"),
        ("frozen_layers", -1),
        ("frozen_layers", None),
        ("prototype_head", "yes"),
        ("learning_rate", 0),
        ("dropout", 1.0),
        ("label_smoothing", -0.1),
        ("label_smoothing", "0.1"),
        ("entity_loss_weight", -1),
        ("entity_loss_weight", None),
        ("pooling", "max"),
        ("lower_case", "yes"),
        ("train_word_embeddings", "no"),
        ("intent_classification", "yes"),
        ("entity_recognition", 1),
        ("entity_crf", None),
        ("out_of_scope_detection", "no"),
        ("precision", "int4"),
        ("precision", None),
        ("ranking_length", -1),
        ("random_seed", None),
        ("model", "/no/such/folder"),
    ],
)
def test_bad_settings_are_refused_before_training(
    setting, value, model_storage, resource, execution_context
):
    config = {**BertIntentClassifier.get_default_config(), setting: value}
    with pytest.raises(
        InvalidConfigException, match=f"BertIntentClassifier: the setting '{setting}'"
    ):
        if setting == "model":
            BertIntentClassifier.fingerprint_addon(config)
        else:
            create(config, model_storage, resource, execution_context)


def test_training_the_word_embeddings_needs_no_layers_kept(
    model_storage, resource, execution_context
):
    config = {"train_word_embeddings": True, "frozen_layers": 2}
    with pytest.raises(InvalidConfigException, match="set 'frozen_layers: 0' to train them"):
        create(config, model_storage, resource, execution_context)


def test_keeping_every_layer_as_pretrained_is_refused_before_training(
    model_storage, resource, execution_context
):
    classifier = create(
        {"num_layers": 3, "frozen_layers": 3}, model_storage, resource, execution_context
    )
    with pytest.raises(InvalidConfigException, match="must be fewer than the 3 layers trained"):
        classifier.train(training_data())


def test_turning_off_both_intents_and_entities_is_refused(
    model_storage, resource, execution_context
):
    config = {"intent_classification": False, "entity_recognition": False}
    with pytest.raises(InvalidConfigException, match="would learn nothing"):
        create(config, model_storage, resource, execution_context)


def test_fingerprint_addon_names_the_encoder_files():
    config = BertIntentClassifier.get_default_config()
    first = BertIntentClassifier.fingerprint_addon(config)
    assert first == BertIntentClassifier.fingerprint_addon(dict(config))
    assert first == BertIntentClassifier.fingerprint_addon({})  # Rasa may pass it without defaults
    assert "bert-for-tf2" in first


def test_loading_with_a_max_seq_len_beyond_the_trained_one_is_refused(trained):
    classifier, storage, resource, context = trained
    with pytest.raises(InvalidConfigException, match="'max_seq_len' must be at most the 64"):
        BertIntentClassifier.load(
            {**config_of(classifier), "max_seq_len": 600}, storage, resource, context
        )
