"""The in-scope factor on vectors whose distribution is known."""

import numpy as np
import pytest

from rasa_bert_intent import in_scope
from rasa_bert_intent.in_scope import COVERAGE, InScopeModel

DIMENSIONS = 16


def clusters(rng, per_class, means):
    """Gaussian vectors around each mean, with a covariance that is not the identity."""
    scales = np.linspace(0.5, 2.0, DIMENSIONS)
    vectors = [mean + rng.normal(size=(per_class, DIMENSIONS)) * scales for mean in means]
    labels = np.repeat(np.arange(len(means)), per_class)
    return np.concatenate(vectors), labels


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    means = np.eye(3, DIMENSIONS) * 20
    vectors, labels = clusters(rng, 2000, means)
    return InScopeModel.fit(vectors, labels, seed=0), means, rng


def test_new_vectors_of_the_training_distribution_mostly_stay_in_scope(fitted):
    model, means, rng = fitted
    new_vectors, _ = clusters(rng, 4000, means)
    factors = model.factors(new_vectors)
    assert ((factors > 0) & (factors < 1)).all()
    # The radius holds COVERAGE of held-out examples: about that share keeps a factor >= 0.5.
    assert np.mean(factors >= 0.5) == pytest.approx(COVERAGE, abs=0.004)
    assert np.median(factors) > 0.99


def test_vectors_far_from_every_mean_get_factors_near_zero(fitted):
    model, means, rng = fitted
    far = rng.normal(size=(100, DIMENSIONS)) * 2 + 60  # 3 times farther than the means lie apart
    assert model.factors(far).max() < 1e-3
    # Far beyond the radius, the factor is 0 without an overflow warning.
    with np.errstate(all="raise"):
        assert model.factors(np.full((1, DIMENSIONS), 1e6)).tolist() == [0.0]
    # Halfway between two means is out of scope too: no intent's examples lie there.
    assert model.factors((means[:1] + means[1:2]) / 2)[0] < 0.01


def test_fewer_examples_than_dimensions_still_give_a_radius():
    rng = np.random.default_rng(1)
    means = np.eye(4, DIMENSIONS) * 10
    vectors, labels = clusters(rng, 3, means)  # 12 examples in 16 dimensions
    model = InScopeModel.fit(vectors, labels, seed=0)
    new_vectors, _ = clusters(rng, 50, means)
    assert np.mean(model.factors(new_vectors) >= 0.5) > 0.8
    assert model.factors(np.full((1, DIMENSIONS), 40.0))[0] < 0.01


def test_no_radius_without_two_examples_that_differ():
    assert InScopeModel.fit(np.ones((1, DIMENSIONS)), [0], seed=0) is None
    assert InScopeModel.fit(np.ones((5, DIMENSIONS)), [0, 0, 1, 1, 1], seed=0) is None


def test_arrays_give_back_the_same_model_and_refuse_inconsistent_ones(fitted):
    model, means, rng = fitted
    vectors = rng.normal(size=(10, DIMENSIONS)) * 10
    copy = InScopeModel.from_arrays(model.to_arrays())
    np.testing.assert_array_equal(copy.factors(vectors), model.factors(vectors))
    arrays = model.to_arrays()
    with pytest.raises(ValueError, match="inconsistent"):
        InScopeModel.from_arrays({**arrays, "precision": arrays["precision"][:-1]})
    with pytest.raises(ValueError, match="inconsistent"):
        InScopeModel.from_arrays({**arrays, "radius": np.array(-1.0)})
    with pytest.raises(KeyError):
        InScopeModel.from_arrays({"means": arrays["means"]})


@pytest.mark.parametrize("per_class, widened", [(10, 1.40), (50, 1.12), (2000, 1.0075)])
def test_the_radius_widens_when_each_intent_has_few_examples(monkeypatch, per_class, widened):
    vectors, labels = clusters(np.random.default_rng(2), per_class, np.eye(3, DIMENSIONS) * 20)
    wide = InScopeModel.fit(vectors, labels, seed=0)
    monkeypatch.setattr(in_scope, "RADIUS_GROWTH", 0.0)
    measured = InScopeModel.fit(vectors, labels, seed=0)
    assert wide.radius / measured.radius == pytest.approx(widened, abs=0.005)
