"""Fixtures shared by the tests, after the ones in Rasa's own test suite."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# No network here: Rasa's telemetry and error reports would only retry and time out.
os.environ["RASA_TELEMETRY_ENABLED"] = "false"

from rasa.engine.graph import ExecutionContext, GraphSchema  # noqa: E402
from rasa.engine.storage.local_model_storage import LocalModelStorage  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402

SNIPS = Path(__file__).resolve().parents[2] / "shared" / "snips-nlu-benchmark"


@pytest.fixture
def model_storage(tmp_path: Path) -> LocalModelStorage:
    return LocalModelStorage(tmp_path)


@pytest.fixture
def execution_context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test-model")


@pytest.fixture
def resource() -> Resource:
    return Resource("bert_intent_classifier")


@pytest.fixture(scope="session")
def snips_folder() -> Path:
    if not SNIPS.is_dir():
        pytest.fail(f"the SNIPS benchmark is expected beside the checkout, at {SNIPS}")
    return SNIPS
