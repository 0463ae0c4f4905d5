"""The trained component's files: damaged ones are named, models of previous formats load and
fine-tune, the encoder read back is checked."""

import hashlib
import json
import shutil

import numpy as np
import pytest
from helpers.components import config_of, load_to_finetune, parse
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.shared.exceptions import RasaException

from rasa_bert_intent import BertIntentClassifier, training
from rasa_bert_intent.pretrained import encoder as encoders
from rasa_bert_intent.storage import (
    IN_SCOPE_FILE,
    METADATA_FILE,
    MODEL_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
)


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


def test_a_model_of_4dc36da_with_the_whole_network_loads_serves_and_fine_tunes(
    trained, tmp_path, monkeypatch
):
    # Format 9 kept the pretrained encoder in model.onnx and every trained weight in half
    # precision: neither serving it nor fine-tuning it reads the encoder.
    classifier, storage, resource, context = trained
    old = tmp_path / "old"
    with storage.read_from(resource) as model_dir:
        shutil.copytree(model_dir, old / resource.name)
    whole = classifier.trained.predictor.onnx_model  # as training exported it
    (old / resource.name / MODEL_FILE).write_bytes(whole)
    metadata = json.loads((old / resource.name / METADATA_FILE).read_text())
    metadata.update(format_version=9, model_sha256=hashlib.sha256(whole).hexdigest())
    (old / resource.name / METADATA_FILE).write_text(json.dumps(metadata))
    state = classifier.trained.finetune_state
    half = {name: value.astype(np.float16) for name, value in state.weights.items()}
    np.savez(old / resource.name / WEIGHTS_FILE, **half, example_hashes=state.example_hashes)
    monkeypatch.setattr(
        BertIntentClassifier, "_pretrained_weights", lambda _: pytest.fail("the encoder was read")
    )
    old_storage = LocalModelStorage(old)
    loaded = BertIntentClassifier.load(config_of(classifier), old_storage, resource, context)
    texts = ["hi there, good morning", "what's the weather like in Rome"]
    for before, after in zip(parse(classifier, *texts), parse(loaded, *texts)):
        assert after.get("intent_ranking") == pytest.approx(before.get("intent_ranking"))
    finetune = load_to_finetune((classifier, old_storage, resource, context), tmp_path / "new")
    assert set(finetune.finetune_from.weights) == set(half)


def test_a_model_whose_encoder_changed_or_is_missing_says_so(trained, tmp_path, monkeypatch):
    classifier, storage, resource, context = trained
    weights = dict(training.pretrained_weights(classifier.settings.encoder()[0]))
    kernel = "encoder/layer_1/output/dense/kernel"
    weights[kernel] = np.asarray(weights[kernel]) + 1e-3  # another version of the encoder
    monkeypatch.setattr(BertIntentClassifier, "_pretrained_weights", lambda _: weights)
    with pytest.raises(RasaException, match=f"'{MODEL_FILE}'.*the encoder changed since"):
        BertIntentClassifier.load(config_of(classifier), storage, resource, context)
    with pytest.raises(RasaException, match=f"'{WEIGHTS_FILE}'.*the encoder changed since"):
        load_to_finetune(trained, tmp_path)
    monkeypatch.undo()

    def not_installed(model):
        raise encoders.EncoderNotFound("the default encoder needs the package `gt-all-...`")

    monkeypatch.setattr(encoders, "load_pretrained", not_installed)
    with pytest.raises(RasaException, match="BertIntentClassifier: .* needs the package"):
        BertIntentClassifier.load(config_of(classifier), storage, resource, context)
