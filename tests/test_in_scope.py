"""The in-scope factor and the neighbours' weighting on vectors whose distribution is known."""

import numpy as np
import pytest
from helpers.in_scope_data import DIMENSIONS, LONG, clusters, factors, fit, long, references

from rasa_bert_intent.in_scope import (
    SHORT_EXPONENT,
    NEIGHBOUR_WEIGHT,
    NETWORK_WEIGHT,
    InScopeModel,
)
from rasa_bert_intent.in_scope_fit import EDGE


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    means = np.eye(3, DIMENSIONS) * 20
    return fit(*clusters(rng, 2000, means)), means, rng


def test_new_vectors_of_the_training_distribution_stay_in_scope(fitted):
    model, means, rng = fitted
    new_vectors, _, _ = clusters(rng, 4000, means)
    new_factors = factors(model, new_vectors)
    assert ((new_factors > 0) & (new_factors < 1)).all()
    assert (model.edges == EDGE).all()
    # New vectors score as held-out training examples do: centred on 0. The two distances of
    # these vectors go together (one space is a rotation of the other), so the weighted sum
    # spreads wider than two independent ones would: 1.26 standard deviations, not 1.
    scores, _ = model.scores(new_vectors, references(new_vectors), long(len(new_vectors)))
    assert abs(np.median(scores)) < 0.2
    # An edge of 2.25 standard deviations (1.8 of this spread) keeps about 97% of them here.
    assert np.mean(new_factors >= 0.5) > 0.96
    assert np.median(new_factors) > 0.99


def test_vectors_far_from_every_mean_get_factors_near_zero(fitted):
    model, means, rng = fitted
    far = rng.normal(size=(100, DIMENSIONS)) * 2 + 60  # 3 times farther than the means lie apart
    assert factors(model, far).max() < 1e-3
    # Far beyond the edge, the factor is about 0 without an overflow warning.
    with np.errstate(all="raise"):
        assert factors(model, np.full((2, DIMENSIONS), [[1e6], [1e9]])).max() < 1e-12
    # Halfway between two means is out of scope too: no intent's examples lie there.
    assert factors(model, (means[:1] + means[1:2]) / 2)[0] < 0.01


def test_a_zero_reference_vector_gives_a_factor_not_an_error(fitted):
    model, means, _ = fitted
    with np.errstate(all="raise"):
        result = model.factors(means[:1], np.zeros((1, DIMENSIONS)), [LONG])
    assert 0 <= result[0] < 0.5


def test_messages_shorter_than_most_training_examples_may_lie_farther():
    rng = np.random.default_rng(3)
    means = np.eye(3, DIMENSIONS) * 20
    vectors, refs, labels = clusters(rng, 200, means)
    lengths = rng.integers(8, 30, size=len(vectors))
    model = fit(vectors, refs, labels, lengths)
    # The 10th percentile of the training examples' lengths.
    assert model.short_length == np.quantile(lengths, 0.1)
    # A vector out along a well-spread dimension, far in the network's space and a little off
    # the mean in the pretrained one: from the short length up its score does not depend on the
    # length; at a third of it the network's distance counts 3 ** SHORT_EXPONENT (5.2) times
    # less, enough to take it in.
    offset = np.eye(1, DIMENSIONS, DIMENSIONS - 1)
    beyond, near = means[:1] + offset * 40, means[:1] + offset * 6
    short = model.short_length
    lengths = [short, 2 * short, short / 3, 1, 0]
    scores, edges = model.scores(
        np.repeat(beyond, 5, axis=0), references(near).repeat(5, 0), lengths
    )
    assert (edges == EDGE).all()
    assert scores[0] == scores[1] > EDGE + 0.5
    weight = NETWORK_WEIGHT / np.hypot(NETWORK_WEIGHT, 1 - NETWORK_WEIGHT)
    less = SHORT_EXPONENT * np.log(3) / model.scales[0] * weight
    assert scores[2] == pytest.approx(scores[0] - less) and scores[2] < EDGE - 0.5
    # A message of one piece gets the widest allowance, and no length divides by zero.
    assert scores[4] == scores[3] <= scores[2]


def test_arrays_give_back_the_same_model_and_refuse_inconsistent_ones(fitted):
    model, means, rng = fitted
    vectors = rng.normal(size=(10, DIMENSIONS)) * 10
    copy = InScopeModel.from_arrays(model.to_arrays())
    lengths = [1, 5, 10, 20, 30, 40, 50, 60, 64, 64]
    np.testing.assert_array_equal(factors(copy, vectors, lengths), factors(model, vectors, lengths))
    arrays = model.to_arrays()
    for bad in (
        {"precision": arrays["precision"][:-1]},
        {"scales": np.array([1.0, 0.0])},
        {"centres": np.array([np.nan, 0.0])},
        {"references": arrays["references"][:0]},
        {"short_length": np.array(0.0)},
        {"edge": np.array(np.inf)},
        {"edge": np.full(len(model.means) + 1, EDGE)},
        {"centres": np.zeros((len(model.means) + 1, 2))},
        {"network_weight": np.array(1.5)},
        {"network_weight": np.array(np.nan)},
    ):
        with pytest.raises(ValueError, match="inconsistent"):
            InScopeModel.from_arrays({**arrays, **bad})
    labels = arrays["reference_labels"]
    for bad_labels in (labels[:-1], np.zeros_like(labels), labels.astype(float)):
        with pytest.raises(ValueError, match="inconsistent"):
            InScopeModel.from_arrays({**arrays, "reference_labels": bad_labels})
    with pytest.raises(KeyError):
        InScopeModel.from_arrays({"means": arrays["means"]})
    # A model saved before intents had their own centre and edge holds one of each.
    shared = {**arrays, "centres": arrays["centres"][0], "edge": np.array(EDGE)}
    before = InScopeModel.from_arrays(shared)
    np.testing.assert_array_equal(factors(before, vectors, lengths), factors(model, vectors, lengths))
    # One saved before the network's weight was stored weighs both distances alike, as then.
    assert copy.network_weight == model.network_weight == NETWORK_WEIGHT
    unweighted = {k: v for k, v in arrays.items() if k != "network_weight"}
    alike = InScopeModel.from_arrays({**arrays, "network_weight": np.array(0.5)})
    old = InScopeModel.from_arrays(unweighted)
    assert old.network_weight == 0.5
    np.testing.assert_array_equal(factors(old, vectors, lengths), factors(alike, vectors, lengths))
    assert not np.array_equal(factors(old, vectors, lengths), factors(model, vectors, lengths))


def test_the_nearest_examples_in_the_pretrained_space_weigh_the_probabilities(fitted):
    model, means, rng = fitted
    new_vectors, _, new_labels = clusters(rng, 100, means)
    uniform = np.full((len(new_vectors), 3), 1 / 3, np.float32)
    weighted = model.with_neighbours(uniform, references(new_vectors))
    np.testing.assert_allclose(weighted.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(weighted.argmax(axis=1) == new_labels) > 0.95
    # A sure network where the neighbours agree stays sure; where they disagree it loses some.
    sure = np.full((len(new_vectors), 3), 1e-4, np.float32)
    sure[:, 0] = 1.0
    kept = model.with_neighbours(sure, references(new_vectors))
    assert np.all(kept[new_labels == 0, 0] > 0.999)
    assert np.all(kept[new_labels != 0, 0] < 1 / (1 + 1e-4 * np.exp(0.5 * NEIGHBOUR_WEIGHT)))
    # A model saved before the references had labels leaves the probabilities as they are.
    arrays = {k: v for k, v in model.to_arrays().items() if k != "reference_labels"}
    before = InScopeModel.from_arrays(arrays)
    np.testing.assert_array_equal(before.with_neighbours(uniform, references(new_vectors)), uniform)
