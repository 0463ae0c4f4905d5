"""The training schedule, the balancing of rare intents and what a fine-tune continues from, without Rasa."""

import numpy as np
import pytest

from rasa_bert_intent.finetune import CannotContinue, TrainedWeights, continue_from, example_hashes
from rasa_bert_intent.training import (
    IN_SCOPE_PER_INTENT,
    Example,
    balanced_rows,
    entity_labels_of,
    finetune_reason,
    in_scope_rows,
    intent_passes,
    schedule,
)


@pytest.mark.parametrize(
    "examples, intents, epochs, batch_size",
    [
        (18, 3, 40, 8),  # 3 batches a pass: 40 passes, the most, 120 steps
        (70, 7, 40, 8),  # SNIPS at 10 per intent
        (68, 7, 40, 8),  # rasa init's starter
        (350, 7, 9, 8),
        (640, 64, 12, 8),  # HWU64 at 10 per intent: 15 steps per intent
        (1_000, 7, 3, 8),
        (2_000, 7, 3, 16),
        (2_000, 64, 10, 16),  # 15 steps per intent times the cube root of 16 / 8
        (9_960, 64, 5, 32),  # an HWU64 fold: 15 steps per intent times the cube root of 32 / 8
        (13_784, 7, 3, 32),  # full SNIPS: the fewest passes, MIN_EPOCHS
    ],
)
def test_the_default_schedule_follows_the_data_size(examples, intents, epochs, batch_size):
    plan = schedule(examples, intents)
    assert (plan.epochs, plan.batch_size) == (epochs, batch_size)
    assert plan.steps == epochs * -(-examples // batch_size)
    assert plan.reason == (
        f"{examples} examples of {intents} intents: {epochs} epochs of batch {batch_size}, about {plan.steps} steps "
        f"(chosen for the data's size)"
    )


@pytest.mark.parametrize(
    "examples, intents, epochs, batch_size",
    [
        (70, 7, 40, 8),  # the 400-step floor rules few intents alike
        (640, 64, 6, 8),  # HWU64 at 10 per intent: 8 steps per intent
        (1_000, 100, 6, 8),  # 800 steps, 6 passes: 6,000 examples shown
        (1_500, 150, 4, 16),  # CLINC150 at 10 per intent: at most 6,000 examples shown
        (9_960, 64, 3, 32),  # an HWU64 fold: the fewest passes, MIN_EPOCHS
    ],
)
def test_a_prototype_head_gets_fewer_steps(examples, intents, epochs, batch_size):
    plan = schedule(examples, intents, prototype_head=True)
    assert (plan.epochs, plan.batch_size) == (epochs, batch_size)


def test_set_epochs_and_batch_size_override_the_schedule():
    # epochs and batch_size are the settings under test.
    plan = schedule(70, 7, epochs=3)
    assert (plan.epochs, plan.batch_size) == (3, 8)
    plan = schedule(70, 7, batch_size=32)
    assert (plan.epochs, plan.batch_size, plan.steps) == (40, 32, 120)
    plan = schedule(13_784, 7, epochs=1, batch_size=64)
    assert (plan.epochs, plan.batch_size, plan.steps) == (1, 64, 216)
    assert plan.reason.endswith("(set)")


def test_rare_intents_are_repeated_up_to_a_tenth_of_the_largest():
    labels = [0] * 300 + [1] * 7 + [2] * 30 + [3] * 1
    rows = balanced_rows(labels)
    counts = np.bincount(np.asarray(labels)[rows])
    assert list(counts) == [300, 30, 30, 30]
    # Every example of a rare intent is in the pass, each repeated about as often.
    assert sorted(set(rows[np.asarray(labels)[rows] == 1])) == list(range(300, 307))
    repeats = np.bincount(rows[np.asarray(labels)[rows] == 1] - 300)
    assert repeats.max() - repeats.min() <= 1
    assert list(balanced_rows([0, 1, 1, 0])) == [0, 1, 2, 3]  # balanced data: unchanged


def test_the_passes_over_each_intents_examples_count_their_repeats():
    labels = [3] * 1 + [0] * 300 + [2] * 30 + [1] * 7
    np.testing.assert_allclose(intent_passes(labels, 2), [2, 2 * 30 / 7, 2, 60])
    np.testing.assert_allclose(intent_passes([0, 1, 1, 0], 5), [5, 5])


def test_the_out_of_scope_statistics_read_at_most_so_many_examples_of_each_intent():
    labels = [0] * (IN_SCOPE_PER_INTENT + 100) + [1] * 7 + [2] * IN_SCOPE_PER_INTENT
    rows = in_scope_rows(labels, seed=1)
    counts = np.bincount(np.asarray(labels)[rows])
    assert list(counts) == [IN_SCOPE_PER_INTENT, 7, IN_SCOPE_PER_INTENT]
    assert rows == sorted(set(rows))  # each example once, in the order given
    assert rows == in_scope_rows(labels, seed=1) != in_scope_rows(labels, seed=2)
    assert in_scope_rows([0, 1, 1], seed=0) == [0, 1, 2] and in_scope_rows([], seed=0) == []


def test_entity_labels_are_collected_in_a_fixed_order():
    examples = [
        Example("fly from a to b", "trip", [
            {"start": 9, "end": 10, "entity": "city", "role": "to"},
            {"start": 4, "end": 8, "entity": "city", "role": "from"},
        ]),
        Example("a pizza", "food", [{"start": 2, "end": 7, "entity": "food", "group": "1"}]),
        Example("hi"),
    ]
    assert entity_labels_of(examples) == [
        ("city", "from", None),
        ("city", "to", None),
        ("food", None, "1"),
    ]
    assert entity_labels_of(list(reversed(examples))) == entity_labels_of(examples)


# Fine-tuning: the previous training's weights continue, the heads grow for new labels.
def tiny_network(num_intents: int, num_entity_tags: int, seed: int):
    import tensorflow as tf
    from bert_reference import TINY_CONFIG

    from rasa_bert_intent.model import IntentModel, IntentNetwork

    tf.keras.utils.set_random_seed(seed)
    network = IntentNetwork(TINY_CONFIG, num_intents, 0.1, "mean", num_entity_tags, True, True)
    return IntentModel(network, 16).network


def test_a_finetune_keeps_the_known_rows_and_starts_new_intents_and_tags_fresh():
    old = tiny_network(num_intents=2, num_entity_tags=3, seed=1)  # tags O, B-city, I-city
    previous = TrainedWeights(
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
    from bert_reference import TINY_CONFIG

    old = tiny_network(num_intents=2, num_entity_tags=0, seed=1)
    weights = old.trained_weights()
    name = "encoder/layer_0/intermediate/kernel"
    weights[name] = np.zeros((TINY_CONFIG["hidden_size"], 7), np.float32)
    previous = TrainedWeights(weights, ["a", "b"], [], 5, np.zeros(0))
    with pytest.raises(CannotContinue, match=f"'{name}' has shape"):
        continue_from(tiny_network(2, 0, seed=2), previous, ["a", "b"], [])


def test_a_finetune_tells_new_examples_by_their_text_intent_and_entities():
    city = {"start": 8, "end": 12, "entity": "city", "value": "Oslo"}
    seen = [Example("hi", "greet"), Example("rain in Oslo", "weather", [city])]
    now = seen + [Example("hello", "greet"), Example("hi", "weather"),
                  Example("rain in Oslo", "weather")]
    is_new = ~np.isin(example_hashes(now), example_hashes(seen))
    assert is_new.tolist() == [False, False, True, True, True]
    previous = TrainedWeights({}, ["greet", "weather"], [], 40, example_hashes(seen))
    # A set schedule only to make the reason's figures fixed; the reason's wording is under test.
    reason = finetune_reason(previous, schedule(8, 3, epochs=10), 5, is_new, 4,
                             ["greet", "thank", "weather"])
    assert reason == (
        "fine-tuning from the previous model: 10 of its 40 passes, 5 examples, 3 new (each in 4 "
        "copies a pass), new intents: thank; batch 8, about 10 steps"
    )
