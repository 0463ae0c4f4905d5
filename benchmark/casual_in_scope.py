"""Short and casual in-scope requests through a trained SNIPS model: how many fall back.

    .venv/bin/python benchmark/casual_in_scope.py models/snips.tar.gz

Parses each request of casual_in_scope.yml (written for this project, apart from SNIPS) with a
Rasa `Agent`, as `rasa run` would, then lets config.yml's FallbackClassifier judge each parse
(so a model trained without one, as `make benchmark`'s are, is judged as the shipped
assistant would be); prints for the short and the casual ones the share ending as
`nlu_fallback` and the share whose top intent other than `nlu_fallback` is right, and lists
the requests that fall back or are named wrongly.
"""

import asyncio
import os
import sys
from pathlib import Path

import yaml

from out_of_scope import falls_back, shipped_fallback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

REQUESTS = Path(__file__).with_name("casual_in_scope.yml")
FALLBACK = "nlu_fallback"


async def parse_all(model: str, requests):
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    return [await agent.parse_message(text) for text, _, _ in requests]


def main() -> None:
    import logging

    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    requests = read_requests(REQUESTS)
    parsed = asyncio.run(parse_all(sys.argv[1], requests))
    fallback = shipped_fallback()
    # Judged on the ranking without nlu_fallback: the same for models with and without one.
    fell = [falls_back(fallback, {"intent": top(p), "ranking": ranked(p)}) for p in parsed]
    for kind in ("short", "casual"):
        # (request, parse, falls back, names the wrong intent), in the requests' alphabetical order
        rows = sorted(
            (r, p, f, named(p) != r[1])
            for r, p, f in zip(requests, parsed, fell)
            if r[2] == kind
        )
        print(
            f"{kind}: {len(rows)} requests, {100 * sum(row[2] for row in rows) / len(rows):.1f}% "
            f"falling back, {100 * (1 - sum(row[3] for row in rows) / len(rows)):.1f}% with "
            f"the right intent"
        )
        for (text, intent, _), p, f, is_wrong in rows:
            if f or is_wrong:
                verdict = FALLBACK if f else named(p)
                confidence = top(p)["confidence"]
                print(f"  {text!r} ({intent}): {verdict}, top {named(p)} {confidence:.2f}")


def read_requests(path: Path):
    """(text, intent, kind) of each request of a file shaped as casual_in_scope.yml."""
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        (text, intent, kind)
        for intent, kinds in written.items()
        for kind, texts in kinds.items()
        for text in texts
    ]


def ranked(parsed):
    """The intent ranking without nlu_fallback."""
    return [r for r in parsed["intent_ranking"] if r["name"] != FALLBACK]


def top(parsed):
    """The ranking's first intent other than nlu_fallback."""
    return (ranked(parsed) or [parsed["intent"]])[0]


def named(parsed) -> str:
    return top(parsed)["name"]


if __name__ == "__main__":
    main()
