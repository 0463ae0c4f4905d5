"""Compares radius rules of the in-scope factor on what benchmark/radius_features.py wrote:
the share of SNIPS dev queries and of casual_dev.yml's short and casual requests that fall back,
and the share of out-of-scope messages caught (half A of each set, see out_of_scope.half_a),
with FallbackClassifier as config.yml sets it.

    .venv/bin/python benchmark/radius_dev.py results/radius-dev/k10-seed3 results/radius-dev/k0-seed3

Each row is one length rule (no widening for short messages, then the shipped one), each
column a radius in medians of the held-out training distances.
"""

import json
import sys

import numpy as np

import rasa_bert_intent.in_scope as in_scope
from out_of_scope import half_a, rows_falling_back

MEDIANS = (3.0, 3.5, 4.0, 4.5)
OUT_OF_SCOPE = ("clinc_oos", "clinc_other", "ours")
SHIPPED = in_scope.SHORT_EXPONENT


def figures(arrays, meta):
    """{set: % falling back} for the module's current constants."""
    intents, sets = meta["intents"], meta["sets"]
    labels = [intents.index(intent) for intent in sets["train"][1]]
    model = in_scope.InScopeModel.fit(
        arrays["train/vectors"], labels, arrays["train/pieces"], seed=42
    )
    shares = {}
    for name in ("dev", "short", "casual", *OUT_OF_SCOPE):
        factors = model.factors(arrays[f"{name}/vectors"], arrays[f"{name}/pieces"])
        fell = rows_falling_back(arrays[f"{name}/probabilities"] * factors[:, None])
        if name in OUT_OF_SCOPE:
            fell = fell[half_a(name, sets[name][1])]
        shares[name] = 100 * fell.mean()
    shares["out of scope"] = np.mean([shares[name] for name in OUT_OF_SCOPE])
    return shares


def main() -> None:
    print("falling back: dev / short / casual | out of scope caught (mean of the 3 sets)")
    for prefix in sys.argv[1:]:
        arrays = dict(np.load(prefix + ".npz"))
        meta = json.loads(open(prefix + ".json").read())
        for exponent in (0.0, SHIPPED):
            in_scope.SHORT_EXPONENT = exponent
            cells = []
            for medians in MEDIANS:
                in_scope.RADIUS_TIMES_MEDIAN = medians
                f = figures(arrays, meta)
                cells.append(
                    f"{medians}: {f['dev']:4.1f}/{f['short']:4.1f}/{f['casual']:4.1f}"
                    f"|{f['out of scope']:4.1f}"
                )
            print(f"{prefix.rsplit('/', 1)[-1]:12s} short exponent {exponent}: " + "  ".join(cells))


if __name__ == "__main__":
    main()
