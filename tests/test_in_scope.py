"""The in-scope factor on vectors whose distribution is known."""

import numpy as np
import pytest

from rasa_bert_intent.in_scope import RADIUS_TIMES_MEDIAN, SHORT_EXPONENT, InScopeModel

DIMENSIONS = 16
# Word pieces of every vector where length plays no part: longer than any training example's
# 10th percentile, so no distance is scaled.
LONG = 64


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
    return InScopeModel.fit(vectors, labels, long(len(vectors)), seed=0), means, rng


def long(count):
    return [LONG] * count


def test_new_vectors_of_the_training_distribution_stay_in_scope(fitted):
    model, means, rng = fitted
    new_vectors, _ = clusters(rng, 4000, means)
    factors = model.factors(new_vectors, long(len(new_vectors)))
    assert ((factors > 0) & (factors < 1)).all()
    # Squared distances of 16 standard normal dimensions have a median of 15.34; the radius is
    # RADIUS_TIMES_MEDIAN of them, beyond which a chi-square of 16 lies once in 100,000.
    assert model.radius == pytest.approx(RADIUS_TIMES_MEDIAN * 15.34, rel=0.05)
    assert np.mean(factors >= 0.5) > 0.999
    assert np.median(factors) > 0.99


def test_vectors_far_from_every_mean_get_factors_near_zero(fitted):
    model, means, rng = fitted
    far = rng.normal(size=(100, DIMENSIONS)) * 2 + 60  # 3 times farther than the means lie apart
    assert model.factors(far, long(len(far))).max() < 1e-3
    # Far beyond the radius, the factor is 0 without an overflow warning.
    with np.errstate(all="raise"):
        assert model.factors(np.full((1, DIMENSIONS), 1e6), [LONG]).tolist() == [0.0]
    # Halfway between two means is out of scope too: no intent's examples lie there.
    assert model.factors((means[:1] + means[1:2]) / 2, [LONG])[0] < 0.01


def test_messages_shorter_than_most_training_examples_may_lie_farther():
    rng = np.random.default_rng(3)
    means = np.eye(3, DIMENSIONS) * 20
    vectors, labels = clusters(rng, 200, means)
    lengths = rng.integers(8, 30, size=len(vectors))
    model = InScopeModel.fit(vectors, labels, lengths, seed=0)
    # The 10th percentile of the training examples' lengths.
    assert model.short_length == np.quantile(lengths, 0.1)
    # A vector twice the radius out along a well-spread dimension (scale 2): out of scope at
    # any length from the short length up, in scope at a third of it, where the radius is
    # 3 ** SHORT_EXPONENT (5.2) times as wide.
    beyond = means[:1] + np.eye(1, DIMENSIONS, DIMENSIONS - 1) * 2 * np.sqrt(2 * model.radius)
    short = model.short_length
    factors = model.factors(np.repeat(beyond, 4, axis=0), [short, 2 * short, short / 3, 1])
    assert factors[0] == factors[1] < 0.01
    assert factors[2] > 0.5 and 3**SHORT_EXPONENT > 4
    # A message of one piece gets the widest radius, and no length divides by zero.
    assert factors[3] >= factors[2]
    assert model.factors(beyond, [0])[0] == factors[3]


def test_fewer_examples_than_dimensions_still_give_a_radius():
    rng = np.random.default_rng(1)
    means = np.eye(4, DIMENSIONS) * 10
    vectors, labels = clusters(rng, 3, means)  # 12 examples in 16 dimensions
    model = InScopeModel.fit(vectors, labels, long(len(vectors)), seed=0)
    new_vectors, _ = clusters(rng, 50, means)
    assert np.mean(model.factors(new_vectors, long(len(new_vectors))) >= 0.5) > 0.8
    assert model.factors(np.full((1, DIMENSIONS), 40.0), [LONG])[0] < 0.01


def test_no_radius_without_two_examples_that_differ():
    assert InScopeModel.fit(np.ones((1, DIMENSIONS)), [0], [LONG], seed=0) is None
    assert InScopeModel.fit(np.ones((5, DIMENSIONS)), [0, 0, 1, 1, 1], long(5), seed=0) is None


def test_arrays_give_back_the_same_model_and_refuse_inconsistent_ones(fitted):
    model, means, rng = fitted
    vectors = rng.normal(size=(10, DIMENSIONS)) * 10
    copy = InScopeModel.from_arrays(model.to_arrays())
    lengths = [1, 5, 10, 20, 30, 40, 50, 60, 64, 64]
    np.testing.assert_array_equal(copy.factors(vectors, lengths), model.factors(vectors, lengths))
    arrays = model.to_arrays()
    with pytest.raises(ValueError, match="inconsistent"):
        InScopeModel.from_arrays({**arrays, "precision": arrays["precision"][:-1]})
    with pytest.raises(ValueError, match="inconsistent"):
        InScopeModel.from_arrays({**arrays, "radius": np.array(-1.0)})
    with pytest.raises(ValueError, match="inconsistent"):
        InScopeModel.from_arrays({**arrays, "short_length": np.array(0.0)})
    with pytest.raises(KeyError):
        InScopeModel.from_arrays({"means": arrays["means"]})


@pytest.mark.parametrize("per_class", [5, 10, 50, 2000])
def test_the_radius_holds_new_vectors_whatever_the_examples_per_intent(per_class):
    rng = np.random.default_rng(2)
    means = np.eye(3, DIMENSIONS) * 20
    vectors, labels = clusters(rng, per_class, means)
    model = InScopeModel.fit(vectors, labels, long(len(vectors)), seed=0)
    new_vectors, _ = clusters(rng, 1000, means)
    assert np.mean(model.factors(new_vectors, long(len(new_vectors))) >= 0.5) > 0.97
    far = rng.normal(size=(100, DIMENSIONS)) * 2 + 60
    assert model.factors(far, long(len(far))).max() < 0.01
