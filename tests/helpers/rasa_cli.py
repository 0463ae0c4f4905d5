"""Rasa's command line, run the way a user runs it, for the end-to-end tests."""

import os
import subprocess
import sys
from pathlib import Path

RASA = str(Path(sys.executable).with_name("rasa"))


def rasa(
    project: Path, *arguments: str, timeout: int = 1200, input: str = ""
) -> subprocess.CompletedProcess:
    """Runs `rasa ARGUMENTS` in the project folder, `input` on its standard input; fails the
    test, showing the end of what it printed, unless it exits with 0."""
    completed = subprocess.run(
        [RASA, *arguments],
        cwd=project,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed
