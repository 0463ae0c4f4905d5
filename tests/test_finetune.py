"""Fine-tuning: the previous weights continue, the heads grow for new labels, new examples are
told apart and get their share of passes; through the component, a new intent is learnt."""

import numpy as np
import pytest
from helpers import tiny_network as tiny_networks
from helpers.bert_reference import TINY_CONFIG
from helpers.components import load_to_finetune, parse, training_data
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_bert_intent.finetune import (
    CHANGE,
    CannotContinue,
    FinetuneState,
    compact,
    continue_from,
    continued_schedule,
    example_hashes,
    expanded,
    held_layers,
    of_new_labels,
)
from rasa_bert_intent.network import IntentNetwork
from rasa_bert_intent.storage import IN_SCOPE_FILE, WEIGHTS_FILE
from rasa_bert_intent.training import Example


def tiny_network(num_intents: int, num_entity_tags: int, seed: int) -> IntentNetwork:
    """A tiny network with a CRF tagging head, built."""
    return tiny_networks.tiny_network(
        num_entity_tags, entity_crf=True, num_intents=num_intents, seed=seed
    )


def test_a_finetune_keeps_the_known_rows_and_starts_new_intents_and_tags_fresh():
    old = tiny_network(num_intents=2, num_entity_tags=3, seed=1)  # tags O, B-city, I-city
    previous = FinetuneState(
        old.trained_weights(), ["greet", "weather"], [("city", None, None)], 5, np.zeros(0)
    )
    new = tiny_network(num_intents=3, num_entity_tags=5, seed=2)
    fresh = {name: weight.numpy() for name, weight in new.named_weights().items()}
    intents = ["goodbye", "greet", "weather"]
    labels = [("city", None, None), ("date", None, None)]
    continue_from(new, previous, intents, labels)
    now = {name: weight.numpy() for name, weight in new.named_weights().items()}
    was = previous.weights
    np.testing.assert_array_equal(now["encoder/layer_0/output/dense/kernel"],
                                  was["encoder/layer_0/output/dense/kernel"])
    np.testing.assert_array_equal(now["dense/kernel"], was["dense/kernel"])
    # Intent rows: greet and weather moved to 1 and 2, goodbye (0) as a fresh training has it.
    np.testing.assert_array_equal(now["logits/kernel"][:, 1:], was["logits/kernel"])
    np.testing.assert_array_equal(now["logits/kernel"][:, 0], fresh["logits/kernel"][:, 0])
    np.testing.assert_array_equal(now["logits/bias"][1:], was["logits/bias"])
    # Tags O, B-city, I-city kept; B-date, I-date fresh; transitions between known tags kept.
    np.testing.assert_array_equal(now["entity_tag_logits/kernel"][:, :3],
                                  was["entity_tag_logits/kernel"])
    np.testing.assert_array_equal(now["entity_tag_logits/kernel"][:, 3:],
                                  fresh["entity_tag_logits/kernel"][:, 3:])
    np.testing.assert_array_equal(now["entity_transitions"][:3, :3], was["entity_transitions"])
    np.testing.assert_array_equal(now["entity_transitions"][3:], fresh["entity_transitions"][3:])


def test_a_finetune_of_another_architecture_is_refused_naming_the_weight():
    old = tiny_network(num_intents=2, num_entity_tags=0, seed=1)
    weights = old.trained_weights()
    name = "encoder/layer_0/intermediate/kernel"
    weights[name] = np.zeros((TINY_CONFIG["hidden_size"], 7), np.float32)
    previous = FinetuneState(weights, ["a", "b"], [], 5, np.zeros(0))
    with pytest.raises(CannotContinue, match=f"'{name}' has shape"):
        continue_from(tiny_network(2, 0, seed=2), previous, ["a", "b"], [])


def test_a_finetune_tells_new_examples_by_their_text_intent_and_entities():
    city = {"start": 8, "end": 12, "entity": "city", "value": "Oslo"}
    place = {**city, "entity": "place"}
    seen = [Example("hi", "greet"), Example("rain in Oslo", "weather", [city])]
    now = seen + [Example("hello", "greet"), Example("hi", "weather"),
                  Example("rain in Oslo", "weather")]
    is_new = ~np.isin(example_hashes(now), example_hashes(seen))
    assert is_new.tolist() == [False, False, True, True, True]
    previous = FinetuneState({}, ["greet", "weather"], [("city", None, None)], 40,
                             example_hashes(seen))
    # New labels, an intent and an entity type, start from nothing: their examples are copied.
    now = seen + [Example("hello", "greet"), Example("thanks", "thank"),
                  Example("snow in Oslo", "weather", [place])]
    new_labels = of_new_labels(now, previous)
    assert new_labels.tolist() == [False, False, False, True, True]
    # Set epochs only to make the figures fixed: the copies and the reason's wording are under
    # test.
    rows, plan = continued_schedule(
        previous, np.arange(5), example_hashes(now), ["greet", "thank", "weather"], new_labels,
        epochs=10, epoch_fraction=1.0, batch_size=None, prototype_head=False,
    )
    # 40 passes before, 10 now: each example of a new label in 4 copies a pass; twice the batch.
    assert rows.tolist() == [0, 1, 2, 3, 4, 3, 3, 3, 4, 4, 4]
    assert plan.reason == (
        "fine-tuning from the previous model: 10 of its 40 passes, 5 examples, 3 new (2 of new "
        "labels, each in 4 copies a pass), new intents: thank; batch 16, about 10 steps"
    )
    # A held-layer count is said; a set batch size is kept (batch 4 is the setting under test,
    # epochs 10 only fixes the figures).
    _, plan = continued_schedule(
        previous, np.arange(5), example_hashes(now), ["greet", "weather"], new_labels,
        epochs=10, epoch_fraction=1.0, batch_size=4, prototype_head=False, held_layers=2,
    )
    assert plan.batch_size == 4
    assert plan.reason.endswith("; the embeddings and bottom 2 layers held as they were")
    # The top layer trains, however few the layers.
    assert [held_layers(n) for n in (1, 2, 4, 6)] == [0, 1, 2, 2]
    # Epochs 0 and batch null are the defaults (follow the data); the fraction is under test.
    _, plan = continued_schedule(
        previous, np.arange(5), example_hashes(now), ["greet", "weather"], new_labels,
        epochs=0, epoch_fraction=0.25, batch_size=None, prototype_head=False,
    )
    assert plan.epochs == 10
def test_a_finetune_learns_a_new_intent_and_keeps_the_old_ones(trained, tmp_path, caplog):
    thanks = ["thank you", "thanks a lot", "many thanks", "thanks, that helps", "cheers, thanks",
              "thank you very much"]
    data = training_data().merge(
        TrainingData([Message.build(text=text, intent="thank") for text in thanks])
    )
    finetuned = load_to_finetune(trained, tmp_path)
    with caplog.at_level("INFO"):
        finetuned.train(data)
    assert (
        "fine-tuning from the previous model: 40 of its 40 passes, 24 examples, 6 new (6 of new "
        "labels), new intents: thank; batch 16, about 80 steps; the embeddings and bottom 2 "
        "layers held as they were" in caplog.text
    )
    texts = ["thanks so much", "hello, good morning", "is it going to rain", "bye for now"]
    assert [m.get("intent")["name"] for m in parse(finetuned, *texts)] == [
        "thank", "greet", "weather", "goodbye"
    ]


def test_a_finetune_of_a_model_without_trained_weights_says_to_train_it_once(trained, tmp_path):
    classifier, _, resource, _ = trained
    load_to_finetune(trained, tmp_path)  # the copy loads
    (tmp_path / resource.name / WEIGHTS_FILE).unlink()
    with pytest.raises(RasaException, match="BertIntentClassifier.*once without --finetune"):
        again = (classifier, LocalModelStorage(tmp_path), resource, None)
        load_to_finetune(again, tmp_path / "again")


def test_a_finetune_refuses_altered_out_of_scope_statistics_naming_them(trained, tmp_path):
    # The fine-tune reads the pretrained vectors kept there: checked as loading checks them.
    classifier, _, resource, _ = trained
    load_to_finetune(trained, tmp_path)
    path = tmp_path / resource.name / IN_SCOPE_FILE
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(RasaException, match=f"'{IN_SCOPE_FILE}'.*once without --finetune"):
        load_to_finetune((classifier, LocalModelStorage(tmp_path), resource, None), tmp_path / "b")


def test_the_weights_kept_are_the_kernels_change_in_int8_and_the_rest_in_half_precision():
    network = tiny_network(num_intents=3, num_entity_tags=3, seed=4)
    pretrained = {name: value.numpy() for name, value in network.named_weights().items()
                  if name.startswith(("encoder/", "embeddings/"))}
    rng = np.random.default_rng(0)
    trained = {name: value + rng.normal(0, 0.01, value.shape).astype(np.float32)
               for name, value in network.trained_weights().items()}
    kept = compact(trained, pretrained)
    kernel = "encoder/layer_1/intermediate/kernel"
    assert kept[kernel + CHANGE].dtype == np.int8 and kernel not in kept
    assert kept["logits/kernel"].dtype == np.float16  # no pretrained weight: as it is
    assert kept["encoder/layer_1/output/LayerNorm/gamma"].dtype == np.float16
    assert sum(a.nbytes for a in kept.values()) < sum(a.nbytes for a in trained.values()) / 3
    back = expanded(kept, lambda: pretrained)
    assert set(back) == set(trained)
    for name, value in trained.items():
        change = value - pretrained.get(name, 0)
        # Half a step of the int8 change's scale, or half precision's rounding.
        tolerance = np.abs(change).max(axis=0) / 254 + np.abs(value) * 1e-3 + 1e-6
        assert np.all(np.abs(back[name] - value) <= tolerance), name
    # Weights kept in half precision alone (models before the change) need no encoder.
    older = {name: value.astype(np.float16) for name, value in trained.items()}
    assert set(expanded(older, lambda: pytest.fail("the encoder was read"))) == set(trained)
    other = {**pretrained, kernel: pretrained[kernel] + 1e-3}  # another version of the encoder
    with pytest.raises(ValueError, match="not those the model was trained with"):
        expanded(kept, lambda: other)
    grown = {**pretrained, kernel: np.zeros((2, 2), np.float32)}
    with pytest.raises(ValueError, match=f"'{kernel}' does not fit"):
        expanded(kept, lambda: grown)
