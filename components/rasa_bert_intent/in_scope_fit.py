"""The out-of-scope statistics fitted to the training examples: their intents' Gaussians in the
network's space, the examples kept for the pretrained space, and the spread of their held-out
distances that sets the edge (docs/out-of-scope.md)."""

import hashlib
import math
from typing import List, Mapping, Optional, Sequence, Union

import numpy as np
from sklearn.covariance import ledoit_wolf_shrinkage

from rasa_bert_intent.in_scope import (
    TINY,
    InScopeModel,
    length_scales,
    nearest_cosine_distances,
    unit,
)
from rasa_bert_intent.predictor import Predictor
from rasa_bert_intent.schedule import intent_passes

# The edge, in standard deviations of the summed score: EDGE after FEW_PASSES passes over an
# intent's examples (or fewer), growing to EDGE + EXTRA_EDGE at MANY_PASSES, linearly in the
# passes' logarithm, as training learns its examples ever closer.
EDGE, EXTRA_EDGE, FEW_PASSES, MANY_PASSES = 2.25, 0.25, 10, 40
# The word piece count below which a message counts as short (in_scope.SHORT_EXPONENT): this
# quantile of the training examples'.
SHORT_QUANTILE = 0.1
# Training examples of each intent kept for the nearest examples (the neighbours' weight needs
# more than the distance does); a message's similarities stay a small product.
REFERENCES_PER_INTENT = 200
# Training examples are held out in FOLDS folds to measure the spread of distances, over new
# splits until about HELD_OUT distances are measured, at most MAX_REPEATS times: one split of a
# few examples per intent gives a noisy spread.
FOLDS, HELD_OUT, MAX_REPEATS = 5, 2000, 20
# The statistics are fitted on at most this many examples of each intent: each takes a pass of
# the served model, and on all of SNIPS 500 gave the same dev figures as all.
IN_SCOPE_PER_INTENT = 500


def fit_to_examples(
    predictor: Predictor,
    token_id_lists: Sequence[Sequence[int]],
    intent_labels: Sequence[int],
    epochs: float,
    seed: int,
    known: Optional[Mapping[int, np.ndarray]] = None,
    network: Optional[Predictor] = None,
) -> Optional[InScopeModel]:
    """The statistics of the training examples (their token ids and intents, trained on for
    `epochs` passes) as `predictor`, the served model, places them (see `fit`). The pretrained
    encoder's unit vectors `known` by token_id_keys (a previous model's references) are not
    computed again: `network`, the served network without that encoder, places those examples."""
    rows = in_scope_rows(intent_labels, seed)
    token_ids = [token_id_lists[row] for row in rows]
    keys = token_id_keys(token_ids)
    known = known if network is not None else None
    is_known = np.isin(keys, np.fromiter(known or (), np.uint64))
    # The vectors of the served model, whose int8 weights move them a little.
    outputs = predictor.predict([token_ids[i] for i in np.flatnonzero(~is_known)])
    vectors = np.empty((len(rows), predictor.hidden_size), np.float32)
    references = np.empty((len(rows), predictor.reference_size), np.float32)
    vectors[~is_known], references[~is_known] = outputs.vectors, outputs.reference_vectors
    if is_known.any():
        alone = network.predict([token_ids[i] for i in np.flatnonzero(is_known)])
        vectors[is_known] = alone.vectors
        references[is_known] = [known[int(key)] for key in keys[is_known]]
    return fit(
        vectors,
        references,
        [intent_labels[row] for row in rows],
        [len(ids) for ids in token_ids],
        intent_passes(intent_labels, epochs),
        seed,
        keys,
    )


def token_id_keys(token_id_lists: Sequence[Sequence[int]]) -> np.ndarray:
    """A 64-bit hash of each example's token ids: what its pretrained vector depends on."""
    return np.array(
        [
            int.from_bytes(
                hashlib.blake2b(np.asarray(ids, np.int32).tobytes(), digest_size=8).digest(),
                "little",
            )
            for ids in token_id_lists
        ],
        dtype=np.uint64,
    )


def in_scope_rows(intent_labels: Sequence[int], seed: int) -> List[int]:
    """The examples the statistics are fitted on, in order: at most IN_SCOPE_PER_INTENT of
    each intent, drawn with the seed."""
    labels = np.asarray(intent_labels)
    rng = np.random.default_rng(seed)
    rows = [
        rng.permutation(np.flatnonzero(labels == label))[:IN_SCOPE_PER_INTENT]
        for label in np.unique(labels)
    ]
    return sorted(np.concatenate(rows).tolist()) if rows else []


def fit(
    vectors: np.ndarray,
    reference_vectors: np.ndarray,
    labels: Sequence[int],
    lengths: Sequence[int],
    passes: Union[float, Sequence[float]],
    seed: int,
    keys: Optional[np.ndarray] = None,
) -> Optional[InScopeModel]:
    """Fits the model to the training examples' vectors in both spaces, labels and word
    piece counts (and their keys, kept with the references), after `passes` passes of training
    over each intent's examples (in the order of the sorted labels; one number: the same for
    all); None with fewer than two examples or no spread among them, which leave no edge to
    measure."""
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
    references = unit(reference_vectors)
    logs = _held_out_logs(vectors, labels, references, kept, lengths, short_length, rng)
    centre = np.median(logs, axis=0)
    # The median absolute deviation, scaled to be the standard deviation of a normal.
    scales = 1.4826 * np.median(np.abs(logs - centre), axis=0)
    if not np.all(scales > 0):
        return None
    # The examples of an intent that training repeated lie farther from the rest than the
    # others', held out or new: its own held-out median is its centre (docs/out-of-scope.md,
    # "Rare intents").
    centres = np.tile(centre, (len(classes), 1))
    held_out_labels = np.tile(labels, len(logs) // len(labels))
    for index in np.flatnonzero(passes > passes.min()):
        centres[index] = np.median(logs[held_out_labels == classes[index]], axis=0)
    growth = np.log(np.maximum(passes, FEW_PASSES) / FEW_PASSES)
    edges = EDGE + EXTRA_EDGE * np.minimum(1.0, growth / math.log(MANY_PASSES / FEW_PASSES))
    means, inverse_covariance = _gaussians(vectors, labels)
    reference_labels = np.searchsorted(classes, labels[kept])
    return InScopeModel(
        means, inverse_covariance, references[kept], short_length, centres, scales, edges,
        reference_labels, reference_keys=None if keys is None else keys[kept],
    )


def _held_out_logs(
    vectors: np.ndarray,
    labels: np.ndarray,
    references: np.ndarray,
    kept: np.ndarray,
    lengths: Sequence[int],
    short_length: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The logarithms of each example's two distances `[examples x repeats, 2]` when held out,
    in FOLDS folds over repeated splits."""
    logs = []
    for _repeat in range(max(1, min(MAX_REPEATS, math.ceil(HELD_OUT / len(vectors))))):
        folds = rng.permutation(len(vectors)) % min(FOLDS, len(vectors))
        held_out = np.empty((len(vectors), 2))
        for fold in np.unique(folds):
            inside, out = folds != fold, folds == fold
            means, inverse_covariance = _gaussians(vectors[inside], labels[inside])
            held_out[out, 0] = _nearest_distances(vectors[out], means, inverse_covariance)
            held_out[out, 1] = nearest_cosine_distances(
                references[out] @ references[kept & inside].T
            )
        held_out[:, 0] /= length_scales(lengths, short_length)
        logs.append(np.log(np.maximum(held_out, TINY)))
    return np.concatenate(logs)


def _gaussians(vectors: np.ndarray, labels: np.ndarray):
    """Each label's mean and the inverse of the shared covariance, shrunk by Ledoit and
    Wolf's rule towards a multiple of the identity (fewer examples than dimensions leave the
    plain covariance singular)."""
    classes = np.unique(labels)
    means = np.stack([vectors[labels == label].mean(axis=0) for label in classes])
    centred = vectors - means[np.searchsorted(classes, labels)]
    return means, _shrunk_inverse_covariance(centred)


def _shrunk_inverse_covariance(centred: np.ndarray) -> np.ndarray:
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


def _nearest_distances(
    vectors: np.ndarray, means: np.ndarray, inverse_covariance: np.ndarray
) -> np.ndarray:
    """Squared Mahalanobis distance of each vector to its nearest mean: the squared Euclidean
    distance after whitening (inverse_covariance = W W'), one product for all the means."""
    eigenvalues, eigenvectors = np.linalg.eigh(inverse_covariance)
    whitening = eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))
    white, white_means = vectors @ whitening, means @ whitening
    distances = (
        np.einsum("ni,ni->n", white, white)[:, None]
        - 2 * white @ white_means.T
        + np.einsum("mi,mi->m", white_means, white_means)[None]
    )
    return np.maximum(distances.min(axis=1), 0.0)
