"""Imports `bert` with its checkpoint loader's printing turned off."""

import contextlib
import os
from typing import Iterator


@contextlib.contextmanager
def quiet_bert_import() -> Iterator[None]:
    """Sets `VERBOSE=0` while `bert` is first imported: its loader reads it then, and prints otherwise."""
    previous = os.environ.get("VERBOSE")
    os.environ["VERBOSE"] = "0"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["VERBOSE"]
        else:
            os.environ["VERBOSE"] = previous
