"""The `bert-intent` console command."""

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional

DEFAULT_SOURCE = Path("..") / "shared" / "snips-nlu-benchmark"


def main(argv: Optional[List[str]] = None) -> int:
    """Runs `bert-intent snips`; returns the exit status."""
    parser = argparse.ArgumentParser(prog="bert-intent", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    snips = commands.add_parser(
        "snips", help="convert the SNIPS benchmark into Rasa NLU YAML training and test files"
    )
    snips.add_argument(
        "source",
        nargs="?",
        type=Path,
        default=DEFAULT_SOURCE,
        help="folder with the benchmark's train_*_full.json and validate_*.json files, or with "
        f"the article's train.csv, valid.csv and test.csv (default: {DEFAULT_SOURCE})",
    )
    snips.add_argument(
        "--train-out",
        type=Path,
        default=Path("data/nlu.yml"),
        help="training data (default: %(default)s)",
    )
    snips.add_argument(
        "--test-out",
        type=Path,
        default=Path("test_data/nlu.yml"),
        help="test data, kept out of data/ (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Rasa imports TensorFlow, which chats
    from rasa_bert_intent.snips import ConversionError, intent_counts, read_source, write_nlu_yaml

    try:
        train, test = read_source(args.source)
    except ConversionError as error:
        print(f"bert-intent snips: {error}", file=sys.stderr)
        return 1
    for messages, path in ((train, args.train_out), (test, args.test_out)):
        write_nlu_yaml(messages, path)
        counts = ", ".join(f"{intent} {count}" for intent, count in intent_counts(messages).items())
        # Rasa keeps each fully identical example (text, intent and entities) once.
        print(f"{path}: {len(messages)} queries, {len(set(messages))} distinct ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
