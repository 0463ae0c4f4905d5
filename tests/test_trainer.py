"""Training the network: the tagging head learns its tags (alone or with a CRF), a fraction of a
pass trains that share of its batches."""

import numpy as np
import pytest
from helpers.tiny_network import (
    MAX_SEQ_LEN,
    TOKEN_ID_LISTS,
    network_outputs,
    tiny_network,
    train,
)

from rasa_bert_intent.batching import pad
from rasa_bert_intent.entities import UNTAGGED
from rasa_bert_intent.predictor import Predictor
from rasa_bert_intent.trainer import NetworkTrainer


@pytest.mark.parametrize(
    "intent_loss_weight, entity_crf", [(1.0, False), (0.0, False), (1.0, True)]
)
def test_the_entity_tagging_head_learns_its_tags_and_goes_into_the_export(
    intent_loss_weight, entity_crf
):
    network = tiny_network(num_entity_tags=3, entity_crf=entity_crf)
    # Tag 1 or 2 by the word's parity, so that the head has something to learn.
    tags = [[UNTAGGED, *[1 + word % 2 for word in ids[1:-1]], UNTAGGED] for ids in TOKEN_ID_LISTS]
    batch, expected = pad(TOKEN_ID_LISTS, 24), pad(tags, 24, UNTAGGED)
    _, tag_logits_before, _ = network.intent_and_entity_tag_logits(batch, False)
    intent_kernel_before = network.logits.kernel.numpy()
    # The last message has no tags: the CRF's loss must skip it, not turn to NaN.
    tags[-1] = None
    expected[-1] = UNTAGGED
    # A tiny network on 4 sequences (the component's schedule is test_training's): 40 passes
    # make it learn them, which is what this test checks it can.
    train(network, tags, epochs=40, intent_loss_weight=intent_loss_weight)
    transitions = network.entity_transitions
    assert (transitions is not None) == entity_crf
    if entity_crf:  # learned: tag 1 and 2 alternate, so 1 -> 2 beats 1 -> 1
        assert np.isfinite(transitions.numpy()).all()
        assert transitions[1, 2] > transitions[1, 1]
    _, tag_logits, _ = network.intent_and_entity_tag_logits(batch, False)
    is_tagged = expected != UNTAGGED
    assert (tag_logits.numpy().argmax(-1)[is_tagged] == expected[is_tagged]).all()
    assert not np.allclose(tag_logits, tag_logits_before)
    # Without the intent loss the intent head keeps its initial weights.
    intent_kernel_kept = np.array_equal(network.logits.kernel.numpy(), intent_kernel_before)
    assert intent_kernel_kept == (intent_loss_weight == 0)
    predictor = Predictor(network.to_onnx("fp32"), MAX_SEQ_LEN, "fp32")
    probabilities, tag_probabilities, _, _ = predictor.predict(TOKEN_ID_LISTS)
    assert probabilities.shape == (4, 3)
    for ids, exported in zip(TOKEN_ID_LISTS, tag_probabilities):
        np.testing.assert_allclose(exported, network_outputs(network, ids)[1], atol=1e-5)


def test_a_fractional_number_of_epochs_trains_that_share_of_the_last_pass(monkeypatch):
    trainer = NetworkTrainer(tiny_network(), MAX_SEQ_LEN)
    make_step, steps = trainer._train_step, []

    def counting_step(*args):
        step = make_step(*args)
        return lambda *batch: steps.append(1) or step(*batch)

    monkeypatch.setattr(trainer, "_train_step", counting_step)
    # epochs is the setting under test; batch 1 makes the step count exact; the rest is plumbing.
    trainer.train(TOKEN_ID_LISTS, [0, 1, 2, 0], [None] * 4, intent_loss_weight=1.0,
                entity_loss_weight=0.0, epochs=1.5, batch_size=1, learning_rate=1e-3,
                label_smoothing=0.0, seed=0, show_progress=False)
    assert len(steps) == 6  # 4 batches of one a pass: one pass and half of the next
