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
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader  # noqa: E402

from helpers.assistants import TRIPS_NLU  # noqa: E402
from helpers.components import create, training_data  # noqa: E402

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


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """The small assistant's classifier, trained once with the defaults for the tests that only
    read it (or put back what they change)."""
    storage = LocalModelStorage(tmp_path_factory.mktemp("storage"))
    context = ExecutionContext(GraphSchema({}), "test-model")
    resource = Resource("trained_classifier")
    # The defaults, but for the whole ranking that some tests read.
    classifier = create({"ranking_length": 0}, storage, resource, context)
    classifier.train(training_data())
    return classifier, storage, resource, context


@pytest.fixture(scope="session")
def trips(tmp_path_factory):
    """A classifier trained once on TRIPS_NLU (roles, groups, adjacent entities of one type),
    with the storage it persisted to."""
    storage = LocalModelStorage(tmp_path_factory.mktemp("trips"))
    context = ExecutionContext(GraphSchema({}), "trips")
    classifier = create({}, storage, Resource("trips"), context)  # the defaults
    classifier.train(RasaYAMLReader().reads(TRIPS_NLU))
    return classifier, storage, context
