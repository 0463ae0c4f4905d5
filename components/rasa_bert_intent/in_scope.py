"""How far a message lies from the training data: the factor that makes confidences fall out
of scope; and how like each intent's nearest training examples it is, which weighs the intent
probabilities.

Two distances of a message to the training examples, each measured against the spread of the
training examples' own distances when held out (5 folds, over repeated splits):
- the fine-tuned network's pooled sentence vector: the squared Mahalanobis distance to the
  nearest intent mean (one Gaussian per intent, a shared covariance), allowed to be larger for
  messages shorter than most training examples;
- the pretrained encoder's sentence vector (the model's reference vector): the cosine distance
  to its NEAREST nearest training examples, of at most REFERENCES_PER_INTENT of each intent.
Each distance's logarithm is standardised with the median and spread of the held-out
examples' logarithms (floored at LOWEST), and the two are summed with the weights
NETWORK_WEIGHT and 1 - NETWORK_WEIGHT (scaled as below). The factor is
about 1 well inside an edge of a few standard deviations, 0.5 at it and near 0 beyond; the
intent probabilities times this factor are the confidences, so `FallbackClassifier`'s threshold
of 0.5 falls back at the edge. The median and the edge are those of the intent whose mean lies
nearest: the same for every intent, but for the rare intents whose examples training repeated
(they have their own held-out median, and an edge for the passes over their examples). Before
the factor, each intent's probability is weighted by the message's similarity to that intent's
NEAREST nearest kept examples in the pretrained space (NEIGHBOUR_WEIGHT). Chosen
on the SNIPS dev split, SNIPS subsamples, an HWU64 dev split, benchmark/experiments/casual_dev.yml and
CLINC150's out-of-scope queries (docs/out-of-scope.md).
"""

import math
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from sklearn.covariance import ledoit_wolf_shrinkage

# The edge, in standard deviations of the summed score. The network learns its training
# examples, held out or not, so after many passes over them their distances understate a new
# message's: the edge grows from EDGE at FEW_PASSES passes (or fewer) to EDGE + EXTRA_EDGE at
# MANY_PASSES (or more), linearly in the passes' logarithm, for each intent by the passes over
# its examples. At 10 SNIPS examples per intent it lets 4.5% of dev queries fall back and
# catches 85% of out-of-scope ones (docs/out-of-scope.md, "Weights of the two distances").
EDGE, EXTRA_EDGE, FEW_PASSES, MANY_PASSES = 2.25, 0.25, 10, 40
# The fine-tuned network's share of the score, the pretrained encoder's the rest. The network
# fits its few training examples, and their paraphrases lie far from them in its space; the
# pretrained space does not move with training. 0.25 caught more out-of-scope messages than 0.5
# on each of 11 SNIPS dev draws (89.7% against 85.7%; docs/out-of-scope.md, "Weights of the
# two distances").
NETWORK_WEIGHT = 0.25
# Models saved before the weight was one of their statistics weighed both distances alike.
_SAVED_WITHOUT_WEIGHT = 0.5
# How sharply the factor falls at the edge: 0.88 half a standard deviation inside, 0.12 outside.
STEEPNESS = 4.0
# Messages shorter than most training examples lie farther from every intent mean in the
# network's space even when in scope (their mean-pooled vectors average a few words), and short
# out-of-scope ones lie farther still: below the SHORT_QUANTILE quantile of the training
# examples' word piece counts, those distances are divided by (that count / the message's) **
# SHORT_EXPONENT (docs/out-of-scope.md, "The median radius and short messages").
SHORT_QUANTILE, SHORT_EXPONENT = 0.1, 1.5
# The pretrained distance is to the mean of this many nearest examples: one example's
# paraphrase lies near it, not near its intent's mean, and one example alone is noisy. At 10
# SNIPS examples per intent, 3 caught 75.4% of out-of-scope dev messages where the nearest one
# caught 70.9% (docs/out-of-scope.md, "Two spaces").
NEAREST = 3
# The intent probabilities are multiplied by exp(NEIGHBOUR_WEIGHT x the mean cosine similarity of
# the message to each intent's NEAREST nearest kept examples in the pretrained space) and
# renormalised: the pretrained encoder knows which messages mean the same where a network
# fine-tuned on a few examples does not. SNIPS dev at 5 per intent: 88.6% -> 91.5%
# (docs/out-of-scope.md, "Neighbours"); 10 and 20 gave about the same.
NEIGHBOUR_WEIGHT = 15.0
# Training examples of each intent kept for the nearest examples: 50 serve the distance as well
# as all of them, the neighbours' weight needs more (an HWU64 fold: 92.0% with 50, 93.3% with
# 200). A message's similarities stay a small product (HWU64: 9,300 vectors, under a ms).
REFERENCES_PER_INTENT = 200
# Training examples are held out in FOLDS folds to measure the spread of distances, over new
# splits until about HELD_OUT distances are measured, at most MAX_REPEATS times: with 10 examples
# per intent one split's spread moved the share of dev queries falling back from 7% to 12%.
FOLDS, HELD_OUT, MAX_REPEATS = 5, 2000, 20
# Distances are floored here before their logarithm (a repeated training example lies at 0).
TINY = 1e-6
# A distance shorter than the held-out examples' counts at most this many standard deviations
# below theirs, so that a message near the examples in one space is not taken in however far it
# lies in the other.
LOWEST = -2.0


class InScopeModel:
    """The statistics of the training examples' vectors in both spaces and the edge;
    `factors` of messages' vectors."""

    def __init__(
        self,
        means: np.ndarray,
        precision: np.ndarray,
        references: np.ndarray,
        short_length: float,
        centres: np.ndarray,
        scales: np.ndarray,
        edges: np.ndarray,
        reference_labels: Optional[np.ndarray] = None,
        network_weight: float = NETWORK_WEIGHT,
    ) -> None:
        """Takes fitted values (see `fit`; one centre pair or edge stands for every intent's;
        without the references' labels, the probabilities are left as they are); raises
        `ValueError` if their shapes disagree."""
        means, precision = np.asarray(means, np.float64), np.asarray(precision, np.float64)
        references = np.asarray(references, np.float32)
        if reference_labels is not None:
            reference_labels = np.asarray(reference_labels)
            if (
                reference_labels.dtype.kind not in "iu"
                or reference_labels.shape != (len(references),)
                or set(reference_labels.tolist()) != set(range(len(means)))
            ):
                raise ValueError("the out-of-scope statistics have inconsistent shapes or values")
        centres, scales = np.asarray(centres, np.float64), np.asarray(scales, np.float64)
        edges = np.asarray(edges, np.float64)
        if (
            means.ndim != 2
            or precision.shape != (means.shape[1], means.shape[1])
            or references.ndim != 2
            or len(references) == 0
            or centres.shape not in ((2,), (len(means), 2))
            or scales.shape != (2,)
            or edges.shape not in ((), (len(means),))
            or not np.all(np.isfinite(centres))
            or not np.all(scales > 0)
            or not np.all(np.isfinite(edges))
            or not short_length >= 1
            or not 0 <= network_weight <= 1
        ):
            raise ValueError("the out-of-scope statistics have inconsistent shapes or values")
        self.means, self.precision, self.references = means, precision, references
        self.reference_labels = reference_labels
        if reference_labels is not None:
            # Each intent's row lists its references' columns, padded with one past the last
            # (a similarity of -inf), so that all intents' nearest are found in one partition.
            counts = np.bincount(reference_labels, minlength=len(means))
            self._intent_columns = np.full((len(means), counts.max()), len(references))
            for intent, count in enumerate(counts):
                self._intent_columns[intent, :count] = np.flatnonzero(reference_labels == intent)
        self.short_length, self.scales = float(short_length), scales
        self.network_weight = float(network_weight)
        # Scaled so that two independent standard scores sum to a spread of 1 again.
        weights = np.array([network_weight, 1 - network_weight])
        self._score_weights = weights / np.linalg.norm(weights)
        # Per intent, in the order of `means`.
        self.centres = np.array(np.broadcast_to(centres, (len(means), 2)))
        self.edges = np.array(np.broadcast_to(edges, (len(means),)))
        # precision = whitening @ whitening.T, so a distance is one product and a sum of squares.
        eigenvalues, eigenvectors = np.linalg.eigh(precision)
        whitening = eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))
        self._whitening = whitening.astype(np.float32)
        self._white_means = (means @ whitening).astype(np.float32)

    @property
    def reference_size(self) -> int:
        """The size of the pretrained encoder's vectors."""
        return self.references.shape[1]

    @classmethod
    def fit(
        cls,
        vectors: np.ndarray,
        reference_vectors: np.ndarray,
        labels: Sequence[int],
        lengths: Sequence[int],
        passes: Union[float, Sequence[float]],
        seed: int,
    ) -> Optional["InScopeModel"]:
        """Fits the model to the training examples' vectors in both spaces, labels and word
        piece counts, after `passes` passes of training over each intent's examples (in the
        order of the sorted labels; one number: the same for all); None with fewer than two
        examples or no spread among them, which leave no edge to measure."""
        vectors, labels = np.asarray(vectors, np.float64), np.asarray(labels)
        if len(vectors) < 2:
            return None
        classes = np.unique(labels)
        passes = np.broadcast_to(np.asarray(passes, np.float64), classes.shape)
        rng = np.random.default_rng(seed)
        short_length = max(1.0, float(np.quantile(lengths, SHORT_QUANTILE)))
        kept = np.zeros(len(labels), bool)
        for label in np.unique(labels):
            kept[rng.permutation(np.flatnonzero(labels == label))[:REFERENCES_PER_INTENT]] = True
        references = _unit(reference_vectors)
        logs = []
        for _repeat in range(max(1, min(MAX_REPEATS, math.ceil(HELD_OUT / len(vectors))))):
            folds = rng.permutation(len(vectors)) % min(FOLDS, len(vectors))
            held_out = np.empty((len(vectors), 2))
            for fold in np.unique(folds):
                inside, out = folds != fold, folds == fold
                means, precision = _gaussians(vectors[inside], labels[inside])
                held_out[out, 0] = _nearest_distances(vectors[out], means, precision)
                held_out[out, 1] = _nearest_cosine_distances(
                    np.einsum("ni,ri->nr", references[out], references[kept & inside])
                )
            held_out[:, 0] /= _length_scales(lengths, short_length)
            logs.append(np.log(np.maximum(held_out, TINY)))
        logs = np.concatenate(logs)
        centre = np.median(logs, axis=0)
        # The median absolute deviation, scaled to be the standard deviation of a normal.
        scales = 1.4826 * np.median(np.abs(logs - centre), axis=0)
        if not np.all(scales > 0):
            return None
        # The examples of an intent that training repeated lie farther from the rest than the
        # others', held out or new (on an SNIPS dev split with two intents cut to 15
        # examples, a quarter of their queries fell back): its own held-out median is its
        # centre (docs/out-of-scope.md, "Rare intents").
        centres = np.tile(centre, (len(classes), 1))
        held_out_labels = np.tile(labels, len(logs) // len(labels))
        for index in np.flatnonzero(passes > passes.min()):
            centres[index] = np.median(logs[held_out_labels == classes[index]], axis=0)
        growth = np.log(np.maximum(passes, FEW_PASSES) / FEW_PASSES)
        edges = EDGE + EXTRA_EDGE * np.minimum(1.0, growth / math.log(MANY_PASSES / FEW_PASSES))
        means, precision = _gaussians(vectors, labels)
        reference_labels = np.searchsorted(classes, labels[kept])
        return cls(
            means, precision, references[kept], short_length, centres, scales, edges,
            reference_labels,
        )

    def confidences(
        self,
        probabilities: np.ndarray,
        vectors: np.ndarray,
        reference_vectors: np.ndarray,
        lengths: Sequence[int],
    ) -> np.ndarray:
        """The intent probabilities `[messages, intents]` weighted by the nearest training
        examples in the pretrained space (`with_neighbours`), times the in-scope factor."""
        similarities = self._similarities(reference_vectors)
        factors = _factors(*self._scores(vectors, similarities, lengths))
        return self._with_neighbours(probabilities, similarities) * factors[:, None]

    def with_neighbours(self, probabilities: np.ndarray, reference_vectors: np.ndarray):
        """The intent probabilities `[messages, intents]` (in the order of `means`) weighted by
        how like each intent's nearest kept examples the message is in the pretrained space."""
        return self._with_neighbours(probabilities, self._similarities(reference_vectors))

    def scores(
        self, vectors: np.ndarray, reference_vectors: np.ndarray, lengths: Sequence[int]
    ) -> Tuple[np.ndarray, np.ndarray]:
        """How far each message lies from the training examples, in standard deviations of
        the held-out examples' distances (0 is typical of them), and the edge it is held to."""
        return self._scores(vectors, self._similarities(reference_vectors), lengths)

    def factors(
        self, vectors: np.ndarray, reference_vectors: np.ndarray, lengths: Sequence[int]
    ) -> np.ndarray:
        """The in-scope factor in [0, 1] of each message, of its sentence vector in the
        network `[messages, hidden]` and in the pretrained encoder `[messages, its hidden]`
        and its length in word pieces."""
        return _factors(*self.scores(vectors, reference_vectors, lengths))

    def _similarities(self, reference_vectors: np.ndarray) -> np.ndarray:
        """Cosine similarities `[messages, kept references]` of the messages' pretrained vectors."""
        # einsum rather than a BLAS product: BLAS wakes threads for it, which took milliseconds
        # now and then while other threads kept the cores busy (one message: 40 us at p99).
        return np.einsum("ni,ri->nr", _unit(reference_vectors), self.references)

    def _scores(self, vectors: np.ndarray, similarities: np.ndarray, lengths: Sequence[int]):
        white = np.einsum("ni,ij->nj", np.asarray(vectors, np.float32), self._whitening)
        distances = ((white[:, None, :] - self._white_means[None]) ** 2).sum(axis=-1)
        nearest = distances.argmin(axis=1)
        network = distances[np.arange(len(nearest)), nearest]
        network = network / _length_scales(lengths, self.short_length)
        reference = _nearest_cosine_distances(similarities)
        logs = np.log(np.maximum(np.stack([network, reference], axis=1), TINY))
        standard = (logs - self.centres[nearest]) / self.scales
        return np.maximum(LOWEST, standard) @ self._score_weights, self.edges[nearest]

    def _with_neighbours(self, probabilities: np.ndarray, similarities: np.ndarray):
        if self.reference_labels is None:
            return probabilities
        padded = np.pad(similarities, ((0, 0), (0, 1)), constant_values=-np.inf)
        by_intent = padded[:, self._intent_columns]  # [messages, intents, most references]
        nearest = min(NEAREST, by_intent.shape[-1])
        top = np.partition(by_intent, -nearest, axis=-1)[..., -nearest:]
        found = np.isfinite(top)
        mean_similarity = np.where(found, top, 0.0).sum(axis=-1) / found.sum(axis=-1)
        logits = np.log(np.maximum(probabilities, 1e-30)) + NEIGHBOUR_WEIGHT * mean_similarity
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (weights / weights.sum(axis=1, keepdims=True)).astype(probabilities.dtype)

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """The fitted values as arrays, for `np.savez`."""
        labels = self.reference_labels
        labels = {} if labels is None else {"reference_labels": labels}
        return {
            "means": self.means,
            "precision": self.precision,
            "references": self.references,
            "short_length": np.array(self.short_length),
            "centres": self.centres,
            "scales": self.scales,
            "edge": self.edges,
            "network_weight": np.array(self.network_weight),
            **labels,
        }

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> "InScopeModel":
        """The model `to_arrays` wrote; `KeyError` or `ValueError` for anything else."""
        return cls(
            arrays["means"],
            arrays["precision"],
            arrays["references"],
            float(arrays["short_length"]),
            arrays["centres"],
            arrays["scales"],
            arrays["edge"],
            arrays.get("reference_labels"),
            float(arrays.get("network_weight", _SAVED_WITHOUT_WEIGHT)),
        )


def _unit(vectors: np.ndarray) -> np.ndarray:
    """The vectors scaled to length 1 (a zero vector stays zero)."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _factors(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp overflows far outside: the factor is 0
        return 1.0 / (1.0 + np.exp(STEEPNESS * (scores - edges)))


def _nearest_cosine_distances(similarities: np.ndarray) -> np.ndarray:
    """1 - the mean of each row's NEAREST largest cosine similarities `[messages, references]`
    (all of them where there are fewer)."""
    nearest = min(NEAREST, similarities.shape[1])
    top = np.partition(similarities, -nearest, axis=1)[:, -nearest:]
    return 1.0 - top.mean(axis=1).astype(np.float64)


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
    return means, _shrunk_precision(centred)


def _shrunk_precision(centred: np.ndarray) -> np.ndarray:
    """The inverse of Ledoit and Wolf's shrunk covariance of the centred vectors X, which is
    a I + b X'X. With fewer vectors than dimensions, by the Woodbury identity
    (I - X' (a/b I + X X')^-1 X) / a: the same to 1e-15, and each of the 100 held-out fits of a
    small assistant took 3 ms instead of 20 to 100 (the pseudo-inverse of the whole matrix)."""
    count, size = centred.shape
    shrinkage = ledoit_wolf_shrinkage(centred, assume_centered=True)
    mean_variance = np.einsum("ij,ij->", centred, centred) / (count * size)
    a, b = shrinkage * mean_variance, (1.0 - shrinkage) / count
    if count < size and a > 0 and b > 0:
        inner = np.linalg.inv((a / b) * np.eye(count) + centred @ centred.T)
        return (np.eye(size) - centred.T @ inner @ centred) / a
    covariance = a * np.eye(size) + b * (centred.T @ centred)
    return np.linalg.pinv(covariance, hermitian=True)


def _nearest_distances(vectors: np.ndarray, means: np.ndarray, precision: np.ndarray):
    """Squared Mahalanobis distance of each vector to its nearest mean."""
    nearest = np.full(len(vectors), np.inf)
    for mean in means:
        offsets = vectors - mean
        nearest = np.minimum(nearest, np.einsum("ni,ni->n", offsets @ precision, offsets))
    return nearest
