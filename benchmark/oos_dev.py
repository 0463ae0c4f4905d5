"""Compares out-of-scope scores on the vectors benchmark/oos_features.py wrote, then the
shipped method (rasa_bert_intent/in_scope.py) at several radii.

    PYTHONPATH=benchmark .venv/bin/python benchmark/oos_dev.py results/oos-dev/seed42

In scope: the SNIPS dev split. Out of scope: CLINC's and ours, in two halves (A: even rows of
each set, CLINC's other domains split by intent; B: the rest): choose on A, confirm on B.
The recall columns put the threshold where 99% (95%) of the dev queries stay in scope, a
threshold that needs the dev split; the shipped method measures its radius on the training
data alone (held-out folds).
"""

import json
import sys

import numpy as np

import rasa_bert_intent.in_scope as in_scope
from out_of_scope import auroc, half_a


def softmax(logits, temperature=1.0):
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def gaussian(train, labels, shrinkage):
    """Class means and the shared precision matrix, the covariance shrunk towards its mean
    variance by `shrinkage`."""
    classes = sorted(set(labels))
    labels = np.asarray(labels)
    means = np.stack([train[labels == c].mean(axis=0) for c in classes])
    centred = train - means[[classes.index(c) for c in labels]]
    covariance = centred.T @ centred / len(train)
    target = np.eye(len(covariance)) * np.trace(covariance) / len(covariance)
    covariance = (1 - shrinkage) * covariance + shrinkage * target
    return means, np.linalg.inv(covariance)


def mahalanobis(x, means, precision):
    """Squared distance of each row to its nearest class mean."""
    return np.min([np.einsum("ni,ni->n", (x - m) @ precision, x - m) for m in means], axis=0)


def nearest_cosine(x, train):
    a = x / np.linalg.norm(x, axis=1, keepdims=True)
    b = train / np.linalg.norm(train, axis=1, keepdims=True)
    return (a @ b.T).max(axis=1)


def fit(arrays, labels):
    """The shipped in-scope model of the training vectors."""
    return in_scope.InScopeModel.fit(arrays["train/pooled"], labels, arrays["train/pieces"], 42)


def factors(model, arrays, name):
    return model.factors(arrays[f"{name}/pooled"], arrays[f"{name}/pieces"])


def main() -> None:
    prefix = sys.argv[1]
    arrays = np.load(prefix + ".npz")
    meta = json.loads(open(prefix + ".json").read())
    sets = meta["sets"]
    train_labels = sets["train"][1]

    # Halves of the out-of-scope data.
    halves = {"A": {}, "B": {}}
    for name in ("clinc_oos", "clinc_other", "ours"):
        halves["A"][name] = half_a(name, sets[name][1])
        halves["B"][name] = ~halves["A"][name]

    def scores(feature_set):
        """{score name: function(set name) -> scores, higher = more in scope}"""
        out = {}
        logits = {n: arrays[f"{n}/logits"] for n in sets}
        out["msp"] = {n: softmax(v).max(axis=1) for n, v in logits.items()}
        out["energy"] = {n: np.log(np.exp(v).sum(axis=1)) for n, v in logits.items()}
        for feature in ("pooled", "dense"):
            vectors = {n: arrays[f"{n}/{feature}"] for n in sets}
            for shrinkage in (0.0, 0.1, 0.5):
                means, precision = gaussian(vectors["train"], train_labels, shrinkage)
                out[f"maha_{feature}_s{shrinkage}"] = {
                    n: -mahalanobis(v, means, precision) for n, v in vectors.items()
                }
            out[f"cos_{feature}"] = {
                n: nearest_cosine(v, vectors["train"][::4]) for n, v in vectors.items()
                if n != "train"
            }
        return out

    all_scores = scores(None)
    print(f"{'score':24} {'AUROC A':>8} {'AUROC B':>8}  recall@99%dev A/B  recall@95%dev A/B")
    for score_name, by_set in all_scores.items():
        dev = by_set["dev"]
        row = f"{score_name:24}"
        recalls = []
        for half in ("A", "B"):
            oos = np.concatenate([by_set[n][mask] for n, mask in halves[half].items()])
            row += f" {auroc(dev, oos):8.4f}"
            for keep in (0.99, 0.95):
                threshold = np.quantile(dev, 1 - keep)
                recalls.append((keep, half, (oos < threshold).mean()))
        row += "  " + " ".join(
            f"{100 * r:5.1f}" for keep in (0.99, 0.95) for k, h, r in recalls if k == keep
        )
        print(row)

    print("\nshipped: softmax times the in-scope factor, FallbackClassifier threshold 0.5")
    intents = meta["intents"]
    labels = [intents.index(intent) for intent in train_labels]
    out_of_scope_names = ("clinc_oos", "clinc_other", "ours")
    for medians in (3.0, 3.5, 4.0, 4.5):
        in_scope.RADIUS_TIMES_MEDIAN = medians
        model = fit(arrays, labels)
        confidence = {
            n: softmax(arrays[f"{n}/logits"]).max(axis=1) * factors(model, arrays, n)
            for n in ["dev", *out_of_scope_names]
        }
        oos = np.concatenate([confidence[n] for n in out_of_scope_names])
        print(
            f"radius {medians} medians: dev falling back "
            f"{100 * np.mean(confidence['dev'] < 0.5):.2f}%, "
            f"out of scope {100 * np.mean(oos < 0.5):.1f}%, AUROC "
            f"{auroc(confidence['dev'], oos):.4f}"
        )

    # Half B only, comparable with a model that trained half A as an intent `out_of_scope`:
    # a message is caught if it falls back or gets that intent.
    in_scope.RADIUS_TIMES_MEDIAN = 3.5
    model = fit(arrays, labels)
    caught, right = {}, {}
    for n in ["dev", *out_of_scope_names]:
        probabilities = softmax(arrays[f"{n}/logits"])
        predicted = [intents[label] for label in probabilities.argmax(axis=1)]
        confidence = probabilities.max(axis=1) * factors(model, arrays, n)
        caught[n] = (confidence < 0.5) | (np.array(predicted) == "out_of_scope")
        right[n] = np.array(predicted) == np.array(sets[n][1])
    half_b = np.concatenate([caught[n][halves["B"][n]] for n in out_of_scope_names])
    print(
        f"\nhalf B: dev caught as out of scope {100 * caught['dev'].mean():.2f}%, dev kept and "
        f"right {100 * (right['dev'] & ~caught['dev']).mean():.2f}%, out of scope caught "
        f"{100 * half_b.mean():.1f}% of {len(half_b)}"
    )


if __name__ == "__main__":
    main()
