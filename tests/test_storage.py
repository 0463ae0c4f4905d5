"""The trained component's files: damaged ones are named, models of the previous format load."""

import json

import pytest
from helpers.components import config_of, parse
from rasa.shared.exceptions import RasaException

from rasa_bert_intent import BertIntentClassifier
from rasa_bert_intent.storage import IN_SCOPE_FILE, METADATA_FILE, MODEL_FILE, VOCAB_FILE


def _bump_format_version(path):
    metadata = json.loads(path.read_text())
    path.write_text(json.dumps({**metadata, "format_version": metadata["format_version"] + 1}))


def _flip_a_byte(path):
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


@pytest.mark.parametrize(
    "file_name, damage",
    [
        (
            MODEL_FILE,
            lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
        ),
        (MODEL_FILE, _flip_a_byte),
        (MODEL_FILE, lambda path: path.unlink()),
        (VOCAB_FILE, lambda path: path.unlink()),
        (METADATA_FILE, lambda path: path.write_text("{not json")),
        (METADATA_FILE, _bump_format_version),
        (IN_SCOPE_FILE, _flip_a_byte),
        (IN_SCOPE_FILE, lambda path: path.unlink()),
    ],
    ids=[
        "truncated model",
        "altered model",
        "no model",
        "no vocabulary",
        "broken metadata",
        "newer format",
        "altered out-of-scope statistics",
        "no out-of-scope statistics",
    ],
)
def test_damaged_model_files_give_an_error_naming_component_and_file(trained, file_name, damage):
    classifier, storage, resource, context = trained
    with storage.read_from(resource) as model_dir:
        path = model_dir / file_name
        original = path.read_bytes()
        damage(path)
        try:
            with pytest.raises(RasaException, match=f"BertIntentClassifier.*'{file_name}'"):
                BertIntentClassifier.load(config_of(classifier), storage, resource, context)
        finally:
            path.write_bytes(original)


@pytest.mark.parametrize("version", [7, 8])
def test_a_model_of_a_previous_format_still_loads(trained, version):
    # Format 8 (4dc36da's) had no "responses"; 7 no "tokenizer" either: vocab.txt, always.
    classifier, storage, resource, context = trained
    texts = ["hi there, good morning", "what's the weather like in Rome"]
    with storage.read_from(resource) as model_dir:
        metadata = (model_dir / METADATA_FILE).read_text()
        old = {**json.loads(metadata), "format_version": version}
        del old["responses"]
        if version == 7:
            del old["tokenizer"]
        (model_dir / METADATA_FILE).write_text(json.dumps(old))
        try:
            loaded = BertIntentClassifier.load(config_of(classifier), storage, resource, context)
        finally:
            (model_dir / METADATA_FILE).write_text(metadata)
    for before, after in zip(parse(classifier, *texts), parse(loaded, *texts)):
        assert after.get("intent_ranking") == pytest.approx(before.get("intent_ranking"))
