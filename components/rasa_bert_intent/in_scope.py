"""How far a message lies from the training data, the factor that makes its confidences fall
out of scope; and how like each intent's nearest training examples it is, which weighs the
intent probabilities.

Two distances to the training examples, each standardised by the spread of the examples' own
held-out distances: in the fine-tuned network's space (Mahalanobis, to the nearest intent mean)
and in the pretrained encoder's (cosine, to the NEAREST nearest examples). Their weighted sum
passes a logistic step at an edge of a few standard deviations: the factor is about 1 inside,
0.5 at the edge, where `FallbackClassifier`'s 0.5 falls back, and near 0 beyond. The method
and its measurements: docs/out-of-scope.md.
"""

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

# The fine-tuned network's share of the score, the pretrained encoder's the rest: the network
# fits its few training examples, so that their paraphrases lie far from them in its space.
NETWORK_WEIGHT = 0.25
# Models saved before the weight was one of their statistics weighed both distances alike.
_SAVED_WITHOUT_WEIGHT = 0.5
# How sharply the factor falls at the edge: 0.88 half a standard deviation inside, 0.12 outside.
STEEPNESS = 4.0
# Short messages lie farther from every intent mean in the network's space, in scope or not:
# below the training examples' short length (in_scope_fit.SHORT_QUANTILE), the distance is
# divided by (that length / the message's) ** SHORT_EXPONENT.
SHORT_EXPONENT = 1.5
# The pretrained distance is to the mean of this many nearest examples: a paraphrase lies near
# its example, not its intent's mean, and one example alone is noisy.
NEAREST = 3
# The intent probabilities are multiplied by exp(NEIGHBOUR_WEIGHT x the mean cosine similarity of
# the message to each intent's NEAREST nearest kept examples in the pretrained space) and
# renormalised: the pretrained encoder knows paraphrases that a few examples do not teach.
NEIGHBOUR_WEIGHT = 15.0
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
        inverse_covariance: np.ndarray,
        references: np.ndarray,
        short_length: float,
        centres: np.ndarray,
        scales: np.ndarray,
        edges: np.ndarray,
        reference_labels: Optional[np.ndarray] = None,
        network_weight: float = NETWORK_WEIGHT,
        reference_keys: Optional[np.ndarray] = None,
    ) -> None:
        """Takes fitted values (see `fit`; one centre pair or edge stands for every intent's;
        without the references' labels, the probabilities are left as they are; their keys
        (in_scope_fit.token_id_keys) let a fine-tune reuse them); raises `ValueError` if their
        shapes disagree."""
        means = np.asarray(means, np.float64)
        inverse_covariance = np.asarray(inverse_covariance, np.float64)
        references = np.asarray(references, np.float32)
        centres, scales = np.asarray(centres, np.float64), np.asarray(scales, np.float64)
        edges = np.asarray(edges, np.float64)
        if reference_labels is not None:
            reference_labels = np.asarray(reference_labels)
        if not _consistent(
            means, inverse_covariance, references, reference_labels, centres, scales, edges
        ) or not (short_length >= 1 and 0 <= network_weight <= 1) or (
            reference_keys is not None and np.shape(reference_keys) != (len(references),)
        ):
            raise ValueError("the out-of-scope statistics have inconsistent shapes or values")
        self.means, self.references = means, references
        self.reference_keys = None if reference_keys is None else np.asarray(reference_keys)
        self.inverse_covariance = inverse_covariance
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
        # inverse_covariance = whitening @ whitening.T: a distance is a product, a sum of squares.
        eigenvalues, eigenvectors = np.linalg.eigh(inverse_covariance)
        whitening = eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))
        self._whitening = whitening.astype(np.float32)
        self._white_means = (means @ whitening).astype(np.float32)

    @property
    def reference_size(self) -> int:
        """The size of the pretrained encoder's vectors."""
        return self.references.shape[1]

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
        return np.einsum("ni,ri->nr", unit(reference_vectors), self.references)

    def _scores(self, vectors: np.ndarray, similarities: np.ndarray, lengths: Sequence[int]):
        white = np.einsum("ni,ij->nj", np.asarray(vectors, np.float32), self._whitening)
        distances = ((white[:, None, :] - self._white_means[None]) ** 2).sum(axis=-1)
        nearest = distances.argmin(axis=1)
        network = distances[np.arange(len(nearest)), nearest]
        network = network / length_scales(lengths, self.short_length)
        reference = nearest_cosine_distances(similarities)
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
        if self.reference_keys is not None:
            labels["reference_keys"] = self.reference_keys
        return {
            "means": self.means,
            "precision": self.inverse_covariance,  # the files' name since version 7
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
            arrays.get("reference_keys"),
        )


def _consistent(
    means: np.ndarray,
    inverse_covariance: np.ndarray,
    references: np.ndarray,
    reference_labels: Optional[np.ndarray],
    centres: np.ndarray,
    scales: np.ndarray,
    edges: np.ndarray,
) -> bool:
    """Whether the statistics' shapes agree and their values are usable."""
    if reference_labels is not None and (
        reference_labels.dtype.kind not in "iu"
        or reference_labels.shape != (len(references),)
        or set(reference_labels.tolist()) != set(range(len(means)))
    ):
        return False
    return (
        means.ndim == 2
        and inverse_covariance.shape == (means.shape[1], means.shape[1])
        and references.ndim == 2
        and len(references) > 0
        and centres.shape in ((2,), (len(means), 2))
        and scales.shape == (2,)
        and edges.shape in ((), (len(means),))
        and bool(np.all(np.isfinite(centres)))
        and bool(np.all(scales > 0))
        and bool(np.all(np.isfinite(edges)))
    )


def unit(vectors: np.ndarray) -> np.ndarray:
    """The vectors scaled to length 1 (a zero vector stays zero)."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _factors(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp overflows far outside: the factor is 0
        return 1.0 / (1.0 + np.exp(STEEPNESS * (scores - edges)))


def nearest_cosine_distances(similarities: np.ndarray) -> np.ndarray:
    """1 - the mean of each row's NEAREST largest cosine similarities `[messages, references]`
    (all of them where there are fewer)."""
    nearest = min(NEAREST, similarities.shape[1])
    top = np.partition(similarities, -nearest, axis=1)[:, -nearest:]
    return 1.0 - top.mean(axis=1).astype(np.float64)


def length_scales(lengths: Sequence[int], short_length: float) -> np.ndarray:
    """How many times farther than a long message's each message's distance may be."""
    lengths = np.maximum(np.asarray(lengths, np.float64), 1.0)
    return np.maximum(1.0, short_length / lengths) ** SHORT_EXPONENT
