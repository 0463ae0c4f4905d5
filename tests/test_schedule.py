"""The training schedule and the balancing of rare intents."""

import numpy as np
import pytest

from rasa_bert_intent.schedule import balanced_rows, intent_passes, schedule


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
