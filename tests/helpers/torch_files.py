"""Writes `pytorch_model.bin` files as `torch.save` does (a zip of a pickled state dict and one
file per storage), without PyTorch: the pickle names torch's rebuilding function and storage
classes, which stand-in modules provide while it is written."""

import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

STORAGE_CLASSES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.int64): "LongStorage",
}


class Tensor:
    """A tensor as a view of a storage: `values` (1-D) from `offset` with `shape` and `stride`."""

    def __init__(self, storage: "Storage", offset: int, shape, stride) -> None:
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, self.offset, self.shape, self.stride, False, OrderedDict())


class Storage:
    def __init__(self, key: str, values: np.ndarray, class_name: Optional[str] = None) -> None:
        self.key, self.values = key, values
        self.class_name = class_name or STORAGE_CLASSES[values.dtype]


def contiguous(key: str, array: np.ndarray, class_name: Optional[str] = None) -> Tensor:
    """`array` as a tensor of its own storage."""
    array = np.ascontiguousarray(array)
    strides = [s // array.itemsize for s in array.strides]
    return Tensor(Storage(key, array.ravel(), class_name), 0, array.shape, strides)


def bfloat16(key: str, array: np.ndarray) -> Tensor:
    """A float32 array stored as bfloat16 (its values' upper halves)."""
    halves = (np.ascontiguousarray(array, np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return contiguous(key, halves, "BFloat16Storage")


def _stand_in_torch() -> Dict[str, types.ModuleType]:
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called: it only names torch's function in the pickle")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    for name in set(STORAGE_CLASSES.values()) | {"BFloat16Storage"}:
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    return {"torch": torch, "torch._utils": utils}


def write_bin(path: Path, state: Dict[str, Any], archive: str = "archive") -> Path:
    """Writes `state` (names to `Tensor`s, or anything else picklable) as torch.save would."""
    saved_modules = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    stand_ins = _stand_in_torch()
    sys.modules.update(stand_ins)
    storages: Dict[str, Storage] = {}

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                storages[obj.key] = obj
                storage_class = getattr(stand_ins["torch"], obj.class_name)
                return ("storage", storage_class, obj.key, "cpu", obj.values.size)
            return None

    try:
        with zipfile.ZipFile(path, "w") as zipped:
            with zipped.open(f"{archive}/data.pkl", "w") as file:
                Pickler(file, protocol=2).dump(state)
            for key, storage in storages.items():
                zipped.writestr(f"{archive}/data/{key}", storage.values.tobytes())
            zipped.writestr(f"{archive}/version", "3\n")
    finally:
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return path
