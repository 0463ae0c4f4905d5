"""Weight files read without PyTorch: safetensors, PyTorch's zip format, shards; and what is refused."""

import json
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from helpers.bert_reference import numpy_bert, tiny_hf_weights, write_hf_folder
from safetensors.numpy import save_file
from helpers.torch_files import Storage, Tensor, bfloat16, contiguous, write_bin

from rasa_bert_intent.pretrained.encoder import EncoderNotFound, HuggingFaceEncoder, load_pretrained
from rasa_bert_intent.network import IntentNetwork
from rasa_bert_intent.batching import pad
from rasa_bert_intent.pretrained.weight_files import (
    PYTORCH,
    SAFETENSORS,
    WeightFileError,
    read_weights,
)

TOKEN_IDS = pad([[2, 5, 8, 9, 10, 3], [2, 11, 12, 3]], 8)


def as_bin_folder(folder, weights):
    """A Hugging Face folder whose weights are a pytorch_model.bin only."""
    (folder / SAFETENSORS).unlink()
    state = OrderedDict(
        (f"bert.{name}", contiguous(str(key), value))
        for key, (name, value) in enumerate(weights.items())
    )
    write_bin(folder / PYTORCH, state)
    return folder


def hidden_states(folder):
    encoder = load_pretrained(str(folder))
    network = IntentNetwork(encoder.config, num_intents=2, dropout=0.1, pooling="mean")
    network.build_for_any_length()
    assert encoder.load_into(network) == []
    return encoder, network.bert([TOKEN_IDS, np.zeros_like(TOKEN_IDS)], training=False).numpy()


def test_a_folder_with_pytorch_weights_only_loads_as_its_safetensors_twin(tmp_path):
    weights = tiny_hf_weights()
    folder = write_hf_folder(tmp_path / "tiny", weights)
    _, from_safetensors = hidden_states(folder)
    encoder, from_bin = hidden_states(as_bin_folder(folder, weights))
    assert isinstance(encoder, HuggingFaceEncoder) and encoder.weights_file.name == PYTORCH
    assert np.array_equal(from_bin, from_safetensors)
    reference = numpy_bert(weights, encoder.config, TOKEN_IDS)
    real = TOKEN_IDS != 0
    # bert-for-tf2's GELU is the tanh approximation; random weights make it matter more.
    assert np.abs(from_bin[real] - reference[real]).max() / np.abs(reference[real]).max() < 2e-3


def test_views_shared_storages_and_half_precisions_are_read_as_saved(tmp_path):
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    shared = Storage("0", np.arange(10, dtype=np.float32))
    state = OrderedDict(
        transposed=Tensor(contiguous("1", matrix).storage, 0, (4, 3), (1, 4)),
        tail=Tensor(shared, 6, (2, 2), (2, 1)),
        head=Tensor(shared, 0, (3,), (1,)),
        half=contiguous("2", matrix.astype(np.float16)),
        brain=bfloat16("3", matrix),
        ids=contiguous("4", np.arange(5, dtype=np.int64)),
        not_a_tensor=7,
    )
    read = read_weights(write_bin(tmp_path / PYTORCH, state))
    assert sorted(read) == ["brain", "half", "head", "ids", "tail", "transposed"]
    assert np.array_equal(read["transposed"], matrix.T)
    assert np.array_equal(read["tail"], [[6, 7], [8, 9]])
    assert np.array_equal(read["head"], [0, 1, 2])
    assert read["half"].dtype == np.float16 and np.allclose(read["half"], matrix, atol=1e-3)
    assert read["brain"].dtype == np.float32 and np.allclose(read["brain"], matrix, rtol=1e-2)
    assert np.array_equal(read["ids"], np.arange(5))


def test_sharded_weights_are_read_through_their_index(tmp_path):
    first, second = {"a": np.ones(2, np.float32)}, {"b": np.zeros((2, 2), np.float32)}
    save_file(first, str(tmp_path / "model-00001-of-00002.safetensors"))
    write_bin(tmp_path / "pytorch_model-00002-of-00002.bin", {"b": contiguous("0", second["b"])})
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors",
                            "b": "pytorch_model-00002-of-00002.bin"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    read = read_weights(tmp_path / "model.safetensors.index.json")
    assert sorted(read) == ["a", "b"]
    assert np.array_equal(read["a"], first["a"]) and np.array_equal(read["b"], second["b"])

    index["weight_map"]["c"] = "model-00003-of-00003.safetensors"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(WeightFileError, match="names the shard 'model-00003-of-00003.safetensors'"):
        read_weights(tmp_path / "model.safetensors.index.json")


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / PYTORCH
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("archive/data.pkl", pickle.dumps({"a": _RunsACommand(marker)}, protocol=2))
    with pytest.raises(WeightFileError, match=r"asks to run (posix|os)\.system when read"):
        read_weights(path)
    assert not marker.exists()


def test_broken_weight_files_are_refused_clearly(tmp_path):
    outside = OrderedDict(a=Tensor(Storage("0", np.zeros(4, np.float32)), 2, (2, 2), (2, 1)))
    with pytest.raises(WeightFileError, match="'a' lies outside its storage"):
        read_weights(write_bin(tmp_path / PYTORCH, outside))["a"]
    (tmp_path / "old.bin").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(WeightFileError, match="not in PyTorch's zip format"):
        read_weights(tmp_path / "old.bin")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightFileError, match="cannot read '.*bad.safetensors'"):
        read_weights(tmp_path / "bad.safetensors")


def test_a_folder_without_weights_says_what_it_holds(tmp_path):
    folder = write_hf_folder(tmp_path / "tiny", tiny_hf_weights())
    (folder / SAFETENSORS).unlink()
    (folder / "tf_model.h5").write_bytes(b"")
    holds = r"pytorch_model\.bin.*it holds config\.json, tf_model\.h5, vocab\.txt"
    with pytest.raises(EncoderNotFound, match=holds):
        load_pretrained(str(folder))
