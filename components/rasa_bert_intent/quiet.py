"""Imports `bert` with its checkpoint loader's printing turned off; environment variables set
for a while."""

import contextlib
import os
from typing import Iterator


@contextlib.contextmanager
def environment_variable(name: str, value: str) -> Iterator[None]:
    """Sets an environment variable inside the block, and back to what it was after it."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def quiet_bert_import() -> contextlib.AbstractContextManager:
    """Sets `VERBOSE=0` while `bert` is first imported: its loader reads it then, and prints otherwise."""
    return environment_variable("VERBOSE", "0")
