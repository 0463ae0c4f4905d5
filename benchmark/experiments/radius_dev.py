"""Compares edges of the in-scope factor on what benchmark/experiments/radius_features.py wrote: the share of
dev queries (SNIPS' dev split or an HWU64 fold's) and of casual_dev.yml's short and casual
requests that fall back, and the share of out-of-scope messages caught (half A of each set, see
out_of_scope.half_a), with FallbackClassifier as config.yml sets it; and the dev accuracy.

    .venv/bin/python benchmark/experiments/radius_dev.py results/radius-dev/k10-seed3

Each column is one edge in standard deviations, the last the shipped one (which grows with the
epochs the schedule chose); `--network-weight 0.5` weighs the two distances as before
2026-12-03 (in_scope.NETWORK_WEIGHT), and `--network-weight 1` scores with the fine-tuned
network's distance alone, as before 2026-12-02's second change; `--neighbour-weight` sets
in_scope.NEIGHBOUR_WEIGHT, which the dev accuracy follows.
"""

import sys
from pathlib import Path

# The benchmark's shared modules (out_of_scope, slot_metrics, learning_curve, in_process).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json

import numpy as np

import rasa_bert_intent.in_scope as in_scope
from rasa_bert_intent import in_scope_fit
from out_of_scope import half_a, rows_falling_back

EDGES = (2.0, 2.25, 2.5, 2.75, 3.0, 3.5, 4.0)
OUT_OF_SCOPE = ("clinc_oos", "clinc_other", "ours")
SETS = ("dev", "short", "casual", *OUT_OF_SCOPE)


def scores(arrays, meta, network_weight: float):
    """{set: in-scope score} of each message, of the statistics of the training examples."""
    labels = [meta["intents"].index(intent) for intent in meta["sets"]["train"][1]]
    model = in_scope_fit.fit(
        arrays["train/vectors"], arrays["train/references"], labels, arrays["train/pieces"],
        meta["epochs"], seed=42,
    )
    weighed = {**model.to_arrays(), "network_weight": np.array(network_weight)}
    model = in_scope.InScopeModel.from_arrays(weighed)
    return model, {
        name: model.scores(
            arrays[f"{name}/vectors"], arrays[f"{name}/references"], arrays[f"{name}/pieces"]
        )[0]
        for name in SETS
        if f"{name}/vectors" in arrays
    }


def shares(meta, probabilities, scores_of, edge: float):
    """{set: % falling back} at the edge, of each set's weighted probabilities."""
    result = {}
    for name, score in scores_of.items():
        with np.errstate(over="ignore"):
            factors = 1.0 / (1.0 + np.exp(in_scope.STEEPNESS * (score - edge)))
        fell = rows_falling_back(probabilities[name] * factors[:, None])
        if name in OUT_OF_SCOPE:
            fell = fell[half_a(name, meta["sets"][name][1])]
        result[name] = 100 * fell.mean()
    if all(name in result for name in OUT_OF_SCOPE):
        result["out of scope"] = np.mean([result[name] for name in OUT_OF_SCOPE])
    return result


def cell(f) -> str:
    text = f"{f['dev']:4.1f}"
    if "out of scope" in f:
        text += f"/{f['short']:4.1f}/{f['casual']:4.1f}|{f['out of scope']:4.1f}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("prefixes", nargs="+")
    parser.add_argument("--network-weight", type=float, default=in_scope.NETWORK_WEIGHT)
    parser.add_argument("--neighbour-weight", type=float, default=in_scope.NEIGHBOUR_WEIGHT)
    args = parser.parse_args()
    in_scope.NEIGHBOUR_WEIGHT = args.neighbour_weight
    print("falling back: dev / short / casual | out of scope caught (mean of the 3 sets)")
    for prefix in args.prefixes:
        arrays = dict(np.load(prefix + ".npz"))
        meta = json.loads(open(prefix + ".json").read())
        model, scores_of = scores(arrays, meta, args.network_weight)
        probabilities = {}  # each set's, weighted by the neighbours once for every edge
        for name in scores_of:
            probabilities[name] = model.with_neighbours(
                arrays[f"{name}/probabilities"], arrays[f"{name}/references"]
            )
        cells = [f"{edge}: {cell(shares(meta, probabilities, scores_of, edge))}" for edge in EDGES]
        edge = float(model.edges[0])  # every intent's: these data sets are balanced
        shipped = shares(meta, probabilities, scores_of, edge)
        cells.append(f"shipped {edge:.2f}: {cell(shipped)}")
        name = prefix.rsplit("/", 1)[-1]
        intents = np.array(meta["intents"])[probabilities["dev"].argmax(axis=1)]
        accuracy = 100 * np.mean(intents == np.array(meta["sets"]["dev"][1]))
        print(
            f"{name:16s} {meta['epochs']:2d} epochs, dev accuracy {accuracy:4.1f}%  "
            + "  ".join(cells)
        )


if __name__ == "__main__":
    main()
