"""The in-scope factor on vectors whose distribution is known."""

import numpy as np
import pytest

from rasa_bert_intent.in_scope import (
    EDGE,
    EXTRA_EDGE,
    REFERENCES_PER_INTENT,
    SHORT_EXPONENT,
    NEIGHBOUR_WEIGHT,
    NETWORK_WEIGHT,
    InScopeModel,
)

DIMENSIONS = 16
# Word pieces of every vector where length plays no part: longer than any training example's
# 10th percentile, so no distance is scaled.
LONG = 64
# Passes of training at or below which the edge is EDGE.
FEW = 2


def clusters(rng, per_class, means):
    """Gaussian vectors around each mean, with a covariance that is not the identity, and
    their reference vectors: the same vectors seen through a fixed random rotation, as another
    encoder would place the same messages."""
    scales = np.linspace(0.5, 2.0, DIMENSIONS)
    vectors = [mean + rng.normal(size=(per_class, DIMENSIONS)) * scales for mean in means]
    labels = np.repeat(np.arange(len(means)), per_class)
    vectors = np.concatenate(vectors)
    return vectors, references(vectors), labels


def references(vectors):
    rotation, _ = np.linalg.qr(np.random.default_rng(99).normal(size=(DIMENSIONS, DIMENSIONS)))
    return vectors @ rotation


def fit(vectors, refs, labels, lengths=None, passes=FEW):
    lengths = long(len(vectors)) if lengths is None else lengths
    return InScopeModel.fit(vectors, refs, labels, lengths, passes, seed=0)


def factors(model, vectors, lengths=None):
    lengths = long(len(vectors)) if lengths is None else lengths
    return model.factors(vectors, references(vectors), lengths)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    means = np.eye(3, DIMENSIONS) * 20
    return fit(*clusters(rng, 2000, means)), means, rng


def long(count):
    return [LONG] * count


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


def test_fewer_examples_than_dimensions_still_give_an_edge():
    rng = np.random.default_rng(1)
    means = np.eye(4, DIMENSIONS) * 10
    model = fit(*clusters(rng, 3, means))  # 12 examples in 16 dimensions
    new_vectors, _, _ = clusters(rng, 50, means)
    assert np.mean(factors(model, new_vectors) >= 0.5) > 0.8
    assert factors(model, np.full((1, DIMENSIONS), 40.0))[0] < 0.01


def test_no_edge_without_two_examples_that_differ():
    one = np.ones((1, DIMENSIONS))
    assert InScopeModel.fit(one, one, [0], [LONG], FEW, seed=0) is None
    same = np.ones((5, DIMENSIONS))
    assert InScopeModel.fit(same, same, [0, 0, 1, 1, 1], long(5), FEW, seed=0) is None


@pytest.mark.parametrize(
    "passes, edge",
    [
        (1, EDGE),
        (10, EDGE),
        (20, EDGE + EXTRA_EDGE / 2),
        (40, EDGE + EXTRA_EDGE),
        (400, EDGE + EXTRA_EDGE),
    ],
)
def test_the_edge_widens_after_many_passes_over_the_examples(passes, edge):
    rng = np.random.default_rng(4)
    model = fit(*clusters(rng, 20, np.eye(3, DIMENSIONS) * 20), passes=passes)
    np.testing.assert_allclose(model.edges, edge)


def test_an_intent_whose_examples_training_repeated_gets_its_own_centre_and_edge():
    rng = np.random.default_rng(0)
    means = np.eye(3, DIMENSIONS) * 20
    vectors, refs, labels = clusters(rng, 500, means)
    rare = np.concatenate([np.flatnonzero(labels != 2), np.flatnonzero(labels == 2)[:15]])
    plain = fit(vectors[rare], refs[rare], labels[rare], passes=2)
    # Training repeated the 15 examples of intent 2: 20 passes over them, 2 over the others'.
    repeated = fit(vectors[rare], refs[rare], labels[rare], passes=[2, 2, 20])
    np.testing.assert_allclose(repeated.edges, [EDGE, EDGE, EDGE + EXTRA_EDGE / 2])
    np.testing.assert_array_equal(repeated.centres[:2], plain.centres[:2])
    assert (repeated.centres[2] != plain.centres[2]).all()
    # Its new vectors lie farther from its mean of 15 than the others' from theirs: more of
    # them stay in scope, and what lies far from every intent stays out.
    new_vectors, _, new_labels = clusters(rng, 1000, means)
    new_vectors = new_vectors[new_labels == 2]
    assert np.mean(factors(plain, new_vectors) >= 0.5) < 0.9
    assert np.mean(factors(repeated, new_vectors) >= 0.5) > 0.95
    assert factors(repeated, rng.normal(size=(100, DIMENSIONS)) * 2 + 60).max() < 0.01


def test_at_most_so_many_reference_vectors_of_each_intent_are_kept():
    rng = np.random.default_rng(5)
    means = np.eye(2, DIMENSIONS) * 20
    vectors, refs, labels = clusters(rng, REFERENCES_PER_INTENT + 30, means)
    # One intent keeps all its examples when it has fewer.
    few = np.concatenate([np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)[:10]])
    model = fit(vectors[few], refs[few], labels[few])
    assert len(model.references) == REFERENCES_PER_INTENT + 10
    np.testing.assert_allclose(np.linalg.norm(model.references, axis=1), 1.0, rtol=1e-5)


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


# With 5 examples of each of 3 intents the spread is measured on 15 held-out distances, and
# the edge moves with their draw (on SNIPS dev data at 5 per intent, 16% of in-scope queries
# fell back, half of them for the softmax alone; docs/out-of-scope.md). The two spaces here move
# together, so the score spreads wider than 1 (see the first test): about 97% stay in scope.
@pytest.mark.parametrize("per_class, kept", [(5, 0.75), (10, 0.95), (50, 0.95), (2000, 0.95)])
def test_the_edge_holds_new_vectors_whatever_the_examples_per_intent(per_class, kept):
    rng = np.random.default_rng(2)
    means = np.eye(3, DIMENSIONS) * 20
    model = fit(*clusters(rng, per_class, means))
    new_vectors, _, _ = clusters(rng, 1000, means)
    assert np.mean(factors(model, new_vectors) >= 0.5) > kept
    far = rng.normal(size=(100, DIMENSIONS)) * 2 + 60
    assert factors(model, far).max() < 0.01


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
