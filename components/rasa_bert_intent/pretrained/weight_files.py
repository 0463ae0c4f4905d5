"""Reads a Hugging Face folder's weights by tensor name, without PyTorch: `model.safetensors`,
`pytorch_model.bin` (PyTorch's zip format, its pickle read with nothing run but the rebuilding
of tensors) and sharded sets of either (`*.index.json`). Each tensor is read when asked."""

import json
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

import numpy as np
from safetensors import safe_open

SAFETENSORS = "model.safetensors"
PYTORCH = "pytorch_model.bin"
INDEX = ".index.json"
# In the order they are looked for: safetensors first, as Hugging Face's own loaders do.
WEIGHT_FILES = (SAFETENSORS, SAFETENSORS + INDEX, PYTORCH, PYTORCH + INDEX)

# PyTorch's storage classes, as its pickles name them, and their element types. bfloat16 has
# no numpy type: it is read as the upper halves of float32s.
_STORAGE_TYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class WeightFileError(ValueError):
    """A weight file cannot be read, or asks for more than tensors."""


def find_weights(folder: Path) -> Optional[Path]:
    """The folder's weight file (or shard index), None if it has none."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def read_weights(path: Path) -> Mapping[str, np.ndarray]:
    """The tensors of a weight file or shard index, by name, each read when asked."""
    try:
        if path.name.endswith(INDEX):
            return _Shards(path)
        if path.suffix == ".safetensors":
            return _SafetensorsFile(path)
        return _PyTorchFile(path)
    except WeightFileError:
        raise
    except Exception as error:  # safetensors' own errors, zipfile's, OSError, bad JSON
        raise WeightFileError(f"cannot read '{path}': {error}") from error


class _SafetensorsFile(Mapping[str, np.ndarray]):
    def __init__(self, path: Path) -> None:
        self._path = str(path)
        with safe_open(self._path, framework="numpy") as file:
            self._names = list(file.keys())

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        # Opened for each tensor: the file is mapped into memory while open, and its pages
        # read so far would count in the process's resident memory.
        with safe_open(self._path, framework="numpy") as file:
            return file.get_tensor(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: Any


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage
    offset: int
    shape: Tuple[int, ...]
    stride: Tuple[int, ...]


def _rebuild_tensor(storage, offset, shape, stride, *_ignored) -> _Tensor:
    return _Tensor(storage, int(offset), tuple(shape), tuple(stride))


def _rebuild_parameter(tensor, *_ignored) -> _Tensor:
    return tensor


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = _STORAGE_TYPES[name]


# What a state dict's pickle may name; anything else would run code of the file's choosing.
_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_TYPES},
}


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path) -> None:
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise WeightFileError(
                f"'{self._path}' asks to run {module}.{name} when read, and only tensors are "
                f"read from it; save the model with safetensors instead"
            )
        return _ALLOWED[(module, name)]

    def persistent_load(self, saved_id: Any) -> _Storage:
        if not (isinstance(saved_id, tuple) and saved_id[0] == "storage"):
            raise WeightFileError(f"'{self._path}' holds a storage of unknown form {saved_id!r}")
        _, storage_type, key, _location, _numel = saved_id
        return _Storage(str(key), storage_type.dtype)


class _PyTorchFile(Mapping[str, np.ndarray]):
    def __init__(self, path: Path) -> None:
        self._path = path
        if not zipfile.is_zipfile(path):
            raise WeightFileError(
                f"'{path}' is not in PyTorch's zip format (saved before PyTorch 1.6?); "
                f"save it again with a newer PyTorch or with safetensors"
            )
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise WeightFileError(f"'{path}' holds {len(pickles)} data.pkl, not one")
            self._prefix = pickles[0][: -len("data.pkl")]
            with archive.open(pickles[0]) as file:
                state = _StateDictUnpickler(file, path).load()
        if not isinstance(state, dict):
            raise WeightFileError(f"'{path}' holds a {type(state).__name__}, not a state dict")
        self._tensors = {name: value for name, value in state.items() if isinstance(value, _Tensor)}

    def __getitem__(self, name: str) -> np.ndarray:
        tensor = self._tensors[name]
        with zipfile.ZipFile(self._path) as archive:
            data = archive.read(f"{self._prefix}data/{tensor.storage.key}")
        dtype = tensor.storage.dtype
        values = np.frombuffer(data, np.uint16 if dtype == "bfloat16" else dtype)
        last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride))
        if (
            min((tensor.offset, *tensor.shape, *tensor.stride), default=0) < 0
            or len(tensor.shape) != len(tensor.stride)
            or (0 not in tensor.shape and last >= len(values))
        ):
            raise WeightFileError(f"'{self._path}': the tensor '{name}' lies outside its storage")
        item = values.itemsize
        array = np.lib.stride_tricks.as_strided(
            values[tensor.offset :], tensor.shape, [s * item for s in tensor.stride]
        ).copy()
        if dtype == "bfloat16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)


class _Shards(Mapping[str, np.ndarray]):
    def __init__(self, path: Path) -> None:
        weight_map = json.loads(path.read_text(encoding="utf-8")).get("weight_map")
        if not isinstance(weight_map, dict):
            raise WeightFileError(f"'{path}' has no weight_map")
        self._file_of: Dict[str, str] = weight_map
        self._files: Dict[str, Mapping[str, np.ndarray]] = {}
        for name in sorted(set(weight_map.values())):
            shard = path.parent / name
            if not shard.is_file():
                raise WeightFileError(f"'{path}' names the shard '{name}', which is missing")
            self._files[name] = read_weights(shard)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._files[self._file_of[name]][name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._file_of)

    def __len__(self) -> int:
        return len(self._file_of)
