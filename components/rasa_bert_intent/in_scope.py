"""How far a message lies from the training data: the factor that makes confidences fall out
of scope.

The network's pooled sentence vectors of the training examples define one Gaussian per intent
with a shared covariance. A message's squared Mahalanobis distance to the nearest intent mean,
against a radius that 99.5% of held-out training examples lie within (widened when each
intent has few examples), gives a factor in
[0, 1]: about 1 well inside, 0.5 at the radius, near 0 far outside. The intent probabilities
times this factor are the confidences, so `FallbackClassifier`'s threshold of 0.5 falls back
at the radius. Chosen on the SNIPS dev split and CLINC150's out-of-scope queries
(docs/out-of-scope.md).
"""

from typing import Dict, Optional, Sequence

import numpy as np
from sklearn.covariance import ledoit_wolf

# Share of held-out training examples inside the radius: about the share of in-scope messages
# that do not fall back at the threshold of 0.5. On the dev data 0.99 caught 3 points more
# out-of-scope messages but let up to 1.29% of the in-scope dev queries fall back (0.995: 1.00%).
COVERAGE = 0.995
# How sharply the factor falls at the radius: 0.88 at 0.8 of it, 0.12 at 1.2 of it.
STEEPNESS = 10.0
# The radius is widened by the factor 1 + RADIUS_GROWTH / n ** 0.75 for n examples per intent
# (the median): 1.67 for 5, 1.40 for 10, 1.12 for 50, 1.01 for 2,000. The network, trained
# for many passes over few examples, sits closer to them than to new messages of their
# intents, even when they are held out of the statistics. Chosen on SNIPS dev queries and
# CLINC150's out-of-scope ones, for training on 5 to 100 examples per intent
# (docs/choosing-the-defaults.md).
RADIUS_GROWTH = 2.25
# Training examples are held out in this many folds to measure the radius: distances of the
# examples the means and covariance were fitted on are smaller than new messages' are.
FOLDS = 5


class InScopeModel:
    """Intent means, shared precision matrix and radius; `factors` of sentence vectors."""

    def __init__(self, means: np.ndarray, precision: np.ndarray, radius: float) -> None:
        """Takes fitted values (see `fit`); raises `ValueError` if their shapes disagree."""
        means, precision = np.asarray(means, np.float64), np.asarray(precision, np.float64)
        if (
            means.ndim != 2
            or precision.shape != (means.shape[1], means.shape[1])
            or not np.isfinite(radius)
            or radius <= 0
        ):
            raise ValueError("the out-of-scope statistics have inconsistent shapes or values")
        self.means, self.precision, self.radius = means, precision, float(radius)
        # precision = whitening @ whitening.T, so a distance is one product and a sum of squares.
        eigenvalues, eigenvectors = np.linalg.eigh(precision)
        whitening = eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))
        self._whitening = whitening.astype(np.float32)
        self._white_means = (means @ whitening).astype(np.float32)

    @classmethod
    def fit(
        cls, vectors: np.ndarray, labels: Sequence[int], seed: int
    ) -> Optional["InScopeModel"]:
        """Fits the model to the training examples' vectors and labels; None with fewer than
        two examples or no spread among them, which leave no radius to measure."""
        vectors, labels = np.asarray(vectors, np.float64), np.asarray(labels)
        if len(vectors) < 2:
            return None
        folds = np.random.default_rng(seed).permutation(len(vectors)) % min(FOLDS, len(vectors))
        held_out = np.empty(len(vectors))
        for fold in np.unique(folds):
            means, precision = _gaussians(vectors[folds != fold], labels[folds != fold])
            held_out[folds == fold] = _nearest_distances(vectors[folds == fold], means, precision)
        per_intent = float(np.median(np.unique(labels, return_counts=True)[1]))
        growth = 1.0 + RADIUS_GROWTH / per_intent**0.75
        radius = float(np.quantile(held_out, COVERAGE)) * growth
        if not radius > 0:
            return None
        return cls(*_gaussians(vectors, labels), radius)

    def distances(self, vectors: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each sentence vector to its nearest intent mean."""
        # einsum rather than a BLAS product: BLAS wakes threads for it, which took milliseconds
        # now and then while other threads kept the cores busy (one message: 40 us at p99).
        white = np.einsum("ni,ij->nj", np.asarray(vectors, np.float32), self._whitening)
        return ((white[:, None, :] - self._white_means[None]) ** 2).sum(axis=-1).min(axis=1)

    def factors(self, vectors: np.ndarray) -> np.ndarray:
        """The in-scope factor in [0, 1] of each sentence vector `[messages, hidden]`."""
        distances = self.distances(vectors)
        with np.errstate(over="ignore"):  # exp overflows far outside: the factor is 0
            return 1.0 / (1.0 + np.exp(STEEPNESS * (distances / self.radius - 1.0)))

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """The fitted values as arrays, for `np.savez`."""
        return {"means": self.means, "precision": self.precision, "radius": np.array(self.radius)}

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> "InScopeModel":
        """The model `to_arrays` wrote; `KeyError` or `ValueError` for anything else."""
        return cls(arrays["means"], arrays["precision"], float(arrays["radius"]))


def _gaussians(vectors: np.ndarray, labels: np.ndarray):
    """Each label's mean and the precision of the shared covariance, shrunk by Ledoit and
    Wolf's rule towards a multiple of the identity (fewer examples than dimensions leave the
    plain covariance singular)."""
    classes = np.unique(labels)
    means = np.stack([vectors[labels == label].mean(axis=0) for label in classes])
    centred = vectors - means[np.searchsorted(classes, labels)]
    covariance, _shrinkage = ledoit_wolf(centred, assume_centered=True)
    return means, np.linalg.pinv(covariance, hermitian=True)


def _nearest_distances(vectors: np.ndarray, means: np.ndarray, precision: np.ndarray):
    """Squared Mahalanobis distance of each vector to its nearest mean."""
    nearest = np.full(len(vectors), np.inf)
    for mean in means:
        offsets = vectors - mean
        nearest = np.minimum(nearest, np.einsum("ni,ni->n", offsets @ precision, offsets))
    return nearest
