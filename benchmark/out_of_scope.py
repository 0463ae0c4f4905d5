"""Out-of-scope messages for a SNIPS assistant and the figures of how its confidences treat
them: CLINC150's queries, read from ../shared, and this project's out_of_scope.yml."""

import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import yaml
from scipy.stats import rankdata

REPOSITORY = Path(__file__).resolve().parents[1]
CLINC = REPOSITORY.parent / "shared" / "clinc150-oos" / "dev.json"
CLINC_IN_SCOPE = CLINC.with_name("in_scope.json")
OURS = Path(__file__).with_name("out_of_scope.yml")


def read_clinc_in_scope() -> Dict[str, List[Tuple[str, str]]]:
    """CLINC150's 150 intents, for few-shot runs rather than out of scope: {"train": [(text,
    intent)], "val": [...]}."""
    data = json.loads(CLINC_IN_SCOPE.read_text(encoding="utf-8"))
    return {split: [(text, intent) for text, intent in data[split]] for split in ("train", "val")}


def read_out_of_scope(clinc: Path = CLINC) -> Dict[str, Tuple[List[str], List[str]]]:
    """{set: (texts, kinds)}: CLINC's out-of-scope queries, its queries of 136 intents that
    SNIPS lacks (their intent as kind) and this project's noise, code, emoji and languages."""
    data = json.loads(clinc.read_text(encoding="utf-8"))
    ours = yaml.safe_load(OURS.read_text(encoding="utf-8"))
    return {
        "clinc_oos": (data["out_of_scope"], ["clinc_oos"] * len(data["out_of_scope"])),
        "clinc_other": ([t for t, _ in data["other_domains"]], [k for _, k in data["other_domains"]]),
        "ours": (
            [str(text) for texts in ours.values() for text in texts],
            [kind for kind, texts in ours.items() for _ in texts],
        ),
    }


def half_a(name: str, kinds: Sequence[str]) -> np.ndarray:
    """Which messages of an out-of-scope set are in half A (the rest are half B): even rows,
    or for CLINC's other intents, every other intent, so that no intent is in both."""
    if name == "clinc_other":
        intents = sorted(set(kinds))
        return np.array([intents.index(kind) % 2 == 0 for kind in kinds])
    return np.arange(len(kinds)) % 2 == 0


def auroc(in_scope: Sequence[float], out_of_scope: Sequence[float]) -> float:
    """The chance that an in-scope message's confidence beats an out-of-scope one's (ties
    count half): 1 separates them perfectly, 0.5 not at all."""
    ranks = rankdata(np.concatenate([in_scope, out_of_scope]))
    n_in, n_out = len(in_scope), len(out_of_scope)
    return float((ranks[:n_in].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out))


def shipped_fallback_config() -> Dict:
    """The FallbackClassifier settings of the project's config.yml, Rasa's defaults merged."""
    from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier

    pipeline = yaml.safe_load((REPOSITORY / "config.yml").read_text(encoding="utf-8"))["pipeline"]
    settings = next(c for c in pipeline if c["name"] == "FallbackClassifier")
    config = {**FallbackClassifier.get_default_config(), **settings}
    del config["name"]
    return config


def shipped_fallback():
    """Rasa's FallbackClassifier with the thresholds of the project's config.yml."""
    from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier

    return FallbackClassifier(shipped_fallback_config())


def falls_back(fallback, parsed: Dict) -> bool:
    """Whether `fallback` turns a parse result (intent and ranking) into `nlu_fallback`."""
    from rasa.shared.nlu.training_data.message import Message

    message = Message(data={"intent": parsed["intent"], "intent_ranking": parsed["ranking"]})
    (message,) = fallback.process([message])
    return message.get("intent")["name"] == "nlu_fallback"


def rows_falling_back(confidences: np.ndarray) -> np.ndarray:
    """What config.yml's FallbackClassifier does to each row of `[messages, intents]`
    confidences, vectorised: True where it would predict `nlu_fallback`."""
    fallback = shipped_fallback_config()
    top2 = -np.sort(-confidences, axis=1)[:, :2]
    return (top2[:, 0] < fallback["threshold"]) | (
        top2[:, 0] - top2[:, 1] < fallback["ambiguity_threshold"]
    )


def figures(in_scope: List[Dict], out_of_scope: List[Dict]) -> Dict:
    """The fallback shares at the shipped thresholds, the AUROC of the top confidence, and
    the out-of-scope share caught when 95% of in-scope messages are kept, and each message's
    top confidence; parse results carry `intent`, `ranking`, and for out-of-scope ones `set`
    and `kind`."""
    fallback = shipped_fallback()
    in_confidences = np.array([p["intent"]["confidence"] for p in in_scope])
    out_confidences = np.array([p["intent"]["confidence"] for p in out_of_scope])
    caught = np.array([falls_back(fallback, p) for p in out_of_scope])
    keep_95 = np.quantile(in_confidences, 0.05)
    by_set = {}
    for name in sorted({p["set"] for p in out_of_scope}):
        rows = np.array([p["set"] == name for p in out_of_scope])
        by_set[name] = round(100 * float(caught[rows].mean()), 2)
    for kind in sorted({p["kind"] for p in out_of_scope if p["set"] == "ours"}):
        rows = np.array([p["set"] == "ours" and p["kind"] == kind for p in out_of_scope])
        by_set[f"ours/{kind}"] = round(100 * float(caught[rows].mean()), 2)
    return {
        "fallback_threshold": fallback.component_config["threshold"],
        "ambiguity_threshold": fallback.component_config["ambiguity_threshold"],
        "in_scope_fallback_pct": 100 * float(np.mean([falls_back(fallback, p) for p in in_scope])),
        "out_of_scope_messages": len(out_of_scope),
        "out_of_scope_fallback_pct": 100 * float(caught.mean()),
        "out_of_scope_fallback_pct_by_set": by_set,
        "oos_auroc": auroc(in_confidences, out_confidences),
        "oos_recall_at_95_pct_kept": 100 * float((out_confidences < keep_95).mean()),
        "in_scope_confidences": in_confidences.tolist(),
        "out_of_scope_confidences": out_confidences.tolist(),
        "out_of_scope_kept": [
            {"text": p["text"], "set": p["set"], "kind": p["kind"], "intent": p["intent"]}
            for p, is_caught in zip(out_of_scope, caught)
            if not is_caught
        ],
    }


def plot(confidences: Dict[str, Tuple[Sequence[float], Sequence[float]]], path: Path) -> None:
    """Histograms of the top confidence of in-scope and out-of-scope messages, one panel per
    system: {system: (in-scope confidences, out-of-scope confidences)}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(confidences), 1, figsize=(7, 2.4 * len(confidences)), squeeze=False
    )
    bins = np.linspace(0, 1, 41)
    for axis, (system, (in_scope, out_of_scope)) in zip(axes[:, 0], confidences.items()):
        axis.hist(in_scope, bins, alpha=0.6, density=True, label="SNIPS test (in scope)")
        axis.hist(out_of_scope, bins, alpha=0.6, density=True, label="out of scope")
        axis.axvline(0.5, color="black", linestyle="--", linewidth=1)
        axis.set_yscale("log")
        axis.set_title(system, fontsize=10)
        axis.set_ylabel("density (log)")
    axes[-1, 0].set_xlabel("top intent confidence (dashed: the fallback threshold)")
    axes[0, 0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
