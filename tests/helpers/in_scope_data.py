"""Vectors whose distribution is known, and the in-scope statistics fitted to them, for the tests
of in_scope.py and in_scope_fit.py."""

import numpy as np

from rasa_bert_intent import in_scope_fit

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
    return in_scope_fit.fit(vectors, refs, labels, lengths, passes, seed=0)


def factors(model, vectors, lengths=None):
    lengths = long(len(vectors)) if lengths is None else lengths
    return model.factors(vectors, references(vectors), lengths)


def long(count):
    return [LONG] * count
