"""How far a message lies from the training data: the factor that makes confidences fall out
of scope.

The network's pooled sentence vectors of the training examples define one Gaussian per intent
with a shared covariance. A message's squared Mahalanobis distance to the nearest intent mean,
against a radius of RADIUS_TIMES_MEDIAN times the median distance of held-out training
examples (wider for messages shorter than most training examples), gives a factor in [0, 1]:
about 1 well inside, 0.5 at the radius, near 0 far outside. The intent probabilities times
this factor are the confidences, so `FallbackClassifier`'s threshold of 0.5 falls back at the
radius. Chosen on the SNIPS dev split, SNIPS subsamples, benchmark/casual_dev.yml and
CLINC150's out-of-scope queries (docs/out-of-scope.md, docs/choosing-the-defaults.md).
"""

from typing import Dict, Optional, Sequence

import numpy as np
from sklearn.covariance import ledoit_wolf

# The radius in medians of the held-out training examples' distances. The median is measured
# well even on 70 examples, where the 99.5% quantile used before was the largest of them: two
# samples of 10 SNIPS examples per intent let 17% and 4% of the dev queries fall back with it,
# and caught 93% and 50% of the out-of-scope ones. With 3.5 medians, on SNIPS dev queries and
# half of the out-of-scope ones: 10 per intent 8 and 10% falling back, 76 and 78% caught; 50 per
# intent 2.0%, 86%; all of SNIPS 0.6%, 93% (docs/out-of-scope.md, "The median radius and short
# messages"; benchmark/radius_dev.py).
RADIUS_TIMES_MEDIAN = 3.5
# How sharply the factor falls at the radius: 0.88 at 0.8 of it, 0.12 at 1.2 of it.
STEEPNESS = 10.0
# Messages shorter than most training examples lie farther from every intent mean even when in
# scope (their mean-pooled vectors average a few words, and [CLS] and [SEP] weigh more), and
# short out-of-scope ones lie farther still: below the SHORT_QUANTILE quantile of the training
# examples' word piece counts, the distances are divided by (that count / the message's) **
# SHORT_EXPONENT. On a full-SNIPS model, at 3.5 medians, this took the short requests of
# benchmark/casual_dev.yml falling back from 36% to 3%, out of scope caught from 93.3% to 92.6%.
SHORT_QUANTILE, SHORT_EXPONENT = 0.1, 1.5
# Training examples are held out in this many folds to measure the radius: distances of the
# examples the means and covariance were fitted on are smaller than new messages' are.
FOLDS = 5


class InScopeModel:
    """Intent means, shared precision matrix, radius and the length below which messages
    count as short; `factors` of sentence vectors."""

    def __init__(
        self, means: np.ndarray, precision: np.ndarray, radius: float, short_length: float
    ) -> None:
        """Takes fitted values (see `fit`); raises `ValueError` if their shapes disagree."""
        means, precision = np.asarray(means, np.float64), np.asarray(precision, np.float64)
        if (
            means.ndim != 2
            or precision.shape != (means.shape[1], means.shape[1])
            or not np.isfinite(radius)
            or radius <= 0
            or not short_length >= 1
        ):
            raise ValueError("the out-of-scope statistics have inconsistent shapes or values")
        self.means, self.precision, self.radius = means, precision, float(radius)
        self.short_length = float(short_length)
        # precision = whitening @ whitening.T, so a distance is one product and a sum of squares.
        eigenvalues, eigenvectors = np.linalg.eigh(precision)
        whitening = eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))
        self._whitening = whitening.astype(np.float32)
        self._white_means = (means @ whitening).astype(np.float32)

    @classmethod
    def fit(
        cls, vectors: np.ndarray, labels: Sequence[int], lengths: Sequence[int], seed: int
    ) -> Optional["InScopeModel"]:
        """Fits the model to the training examples' vectors, labels and word piece counts;
        None with fewer than two examples or no spread among them, which leave no radius to
        measure."""
        vectors, labels = np.asarray(vectors, np.float64), np.asarray(labels)
        if len(vectors) < 2:
            return None
        short_length = max(1.0, float(np.quantile(lengths, SHORT_QUANTILE)))
        folds = np.random.default_rng(seed).permutation(len(vectors)) % min(FOLDS, len(vectors))
        held_out = np.empty(len(vectors))
        for fold in np.unique(folds):
            means, precision = _gaussians(vectors[folds != fold], labels[folds != fold])
            held_out[folds == fold] = _nearest_distances(vectors[folds == fold], means, precision)
        held_out /= _length_scales(lengths, short_length)
        radius = RADIUS_TIMES_MEDIAN * float(np.median(held_out))
        if not radius > 0:
            return None
        return cls(*_gaussians(vectors, labels), radius, short_length)

    def distances(self, vectors: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each sentence vector to its nearest intent mean."""
        # einsum rather than a BLAS product: BLAS wakes threads for it, which took milliseconds
        # now and then while other threads kept the cores busy (one message: 40 us at p99).
        white = np.einsum("ni,ij->nj", np.asarray(vectors, np.float32), self._whitening)
        return ((white[:, None, :] - self._white_means[None]) ** 2).sum(axis=-1).min(axis=1)

    def factors(self, vectors: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
        """The in-scope factor in [0, 1] of each sentence vector `[messages, hidden]`, of
        messages of `lengths` word pieces."""
        distances = self.distances(vectors) / _length_scales(lengths, self.short_length)
        with np.errstate(over="ignore"):  # exp overflows far outside: the factor is 0
            return 1.0 / (1.0 + np.exp(STEEPNESS * (distances / self.radius - 1.0)))

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """The fitted values as arrays, for `np.savez`."""
        return {
            "means": self.means,
            "precision": self.precision,
            "radius": np.array(self.radius),
            "short_length": np.array(self.short_length),
        }

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> "InScopeModel":
        """The model `to_arrays` wrote; `KeyError` or `ValueError` for anything else."""
        return cls(
            arrays["means"],
            arrays["precision"],
            float(arrays["radius"]),
            float(arrays["short_length"]),
        )


def _length_scales(lengths: Sequence[int], short_length: float) -> np.ndarray:
    """How many times farther than a long message's each message's distance may be."""
    lengths = np.maximum(np.asarray(lengths, np.float64), 1.0)
    return np.maximum(1.0, short_length / lengths) ** SHORT_EXPONENT


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
