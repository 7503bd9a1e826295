"""Read PyTorch ``.pth`` files into NumPy without PyTorch, and without running their code.

A ``.pth`` file is a pickle whose tensors point into separately stored raw
buffers ("storages"). Unpickling it with `pickle` would call whatever the file
names, so `load` uses an unpickler that resolves only the few names a file of
weights needs -- the same kind of list as ``torch.load(weights_only=True)``:

* ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` (a tensor from a
  storage, offset, shape and strides), rebuilt here as a NumPy array;
* ``torch.<Type>Storage`` (also ``torch.cuda.<Type>Storage``), which only name
  the element type of a storage;
* ``collections.OrderedDict`` and ``torch.Size``, plus what pickle builds by
  itself: dicts, lists, tuples, strings, numbers, booleans, None.

Any other name (``os.system``, ``builtins.eval``, a model class, ...) stops the
read with a `PthError` before anything is called. Two layouts are read:

* the zip layout (``torch.save`` since PyTorch 1.6): ``<dir>/data.pkl`` plus one
  entry ``<dir>/data/<key>`` per storage and ``<dir>/byteorder``;
* the legacy layout (PyTorch 0.4-1.5, e.g. the published AutoGAN checkpoints,
  and ``_use_new_zipfile_serialization=False``): consecutive pickles (magic
  number, protocol version, system info, the object, the storage keys), then
  each storage as an int64 element count and its raw bytes.

Storages saved on a GPU are read onto the CPU (the location is ignored).
Files of PyTorch < 0.4 (tar archives) are refused with advice to re-save.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

from autogan_tf import errors

# Element type of each storage class name torch writes.
STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("float64"),
    "FloatStorage": np.dtype("float32"),
    "HalfStorage": np.dtype("float16"),
    "BFloat16Storage": np.dtype("uint16"),  # widened to float32 by `_as_array`
    "LongStorage": np.dtype("int64"),
    "IntStorage": np.dtype("int32"),
    "ShortStorage": np.dtype("int16"),
    "CharStorage": np.dtype("int8"),
    "ByteStorage": np.dtype("uint8"),
    "BoolStorage": np.dtype("bool"),
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
_ZIP_SIGNATURE = b"PK\x03\x04"
_MAX_LISTED = 60  # characters of a refused name quoted in an error


class PthError(errors.UserError):
    """A ``.pth`` file that is not a readable, tensors-only PyTorch checkpoint."""


class _StorageType:
    """Stands for ``torch.<Name>Storage`` in a pickle: only its element type is used."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class _Storage:
    """One storage named by the pickle; its bytes arrive from the zip entry or later."""

    __slots__ = ("key", "dtype", "numel", "bfloat16", "data", "views")

    def __init__(self, key: str, dtype: np.dtype, numel: int, bfloat16: bool):
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.bfloat16 = bfloat16
        self.data: np.ndarray | None = None
        self.views: list = []  # legacy views into this storage: (offset, _Storage)


class _TensorRef:
    """A tensor of the pickle, made into an array once every storage has its bytes."""

    __slots__ = ("storage", "offset", "shape", "stride")

    def __init__(self, storage: _Storage, offset: int, shape, stride):
        self.storage = storage
        self.offset = offset
        self.shape = tuple(shape)
        self.stride = tuple(stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: record where the tensor lives."""
    del requires_grad, metadata
    if backward_hooks:
        raise pickle.UnpicklingError("a tensor with backward hooks")
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor whose storage is not a stored buffer")
    if not (_is_int(storage_offset) and isinstance(size, tuple) and isinstance(stride, tuple)
            and all(map(_is_int, size + stride))):
        raise pickle.UnpicklingError("a tensor with a malformed offset, shape or strides")
    return _TensorRef(storage, storage_offset, size, stride)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    """Stand-in for ``torch._utils._rebuild_parameter``: a parameter is its tensor."""
    del requires_grad
    if backward_hooks:
        raise pickle.UnpicklingError("a parameter with backward hooks")
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch", "Size"): tuple,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RefusedName(pickle.UnpicklingError):
    """Raised by `_WeightsUnpickler.find_class` for a name outside the allowed list."""


class _WeightsUnpickler(pickle.Unpickler):
    """Unpickler that resolves only tensor, storage and container names (nothing runs).

    Args:
      file: the open pickle stream.
      storages: key -> storage, filled as the pickle names storages.
      make_storage: ``(key, storage_type, numel) -> storage`` for a storage seen first.
    """

    def __init__(self, file, storages: dict, make_storage):
        super().__init__(file)
        self._storages = storages
        self._make_storage = make_storage

    def find_class(self, module, name):
        """Resolve a pickled global: only allowed names and ``torch.*Storage`` types.

        Refusing every other name is what makes loading a file safe: no function named by the
        file is ever called.

        Args:
          module: the global's module, as pickled.
          name: the global's name.

        Returns:
          The stand-in for an allowed name, or a `_StorageType`.

        Raises:
          _RefusedName: any other name (reported as a `PthError` by the caller).
        """
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module in ("torch", "torch.cuda") and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise _RefusedName(_python3_name(module, name)[:_MAX_LISTED])

    def persistent_load(self, pid):
        """Resolve a persistent id of a ``torch.save`` pickle to its storage.

        Args:
          pid: ``("storage", storage type, key, location, numel[, view])``.

        Returns:
          The storage for ``key`` (made on first sight), or a view of it for a legacy view.

        Raises:
          pickle.UnpicklingError: ``pid`` is not a storage id.
        """
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {str(pid)[:_MAX_LISTED]}")
        _, storage_type, key, _location, numel = pid[:5]
        view = pid[5] if len(pid) > 5 else None
        key = str(key)
        if key not in self._storages:
            self._storages[key] = self._make_storage(key, storage_type, int(numel))
        storage = self._storages[key]
        if view is not None:  # legacy view of a larger storage: (view_key, offset, size)
            return _view(storage, view)
        return storage


def _python3_name(module: str, name: str) -> str:
    """``module.name`` as Python 3 spells it (protocol-2 pickles say ``__builtin__``)."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}"


def _view(storage: _Storage, view) -> _Storage:
    """A legacy storage view as its own storage sharing the parent's key and bytes."""
    _view_key, offset, size = view
    part = _Storage(storage.key, storage.dtype, int(size), storage.bfloat16)
    storage.views.append((int(offset), part))  # given their bytes by `_fill_views`
    return part


def _new_storage(key: str, storage_type: _StorageType, numel: int) -> _Storage:
    return _Storage(key, storage_type.dtype, numel, storage_type.name == "BFloat16Storage")


def _unpickle(file, path: str, storages: dict):
    """Run the restricted unpickler on ``file``; a refused name becomes a `PthError`."""
    try:
        return _WeightsUnpickler(file, storages, _new_storage).load()
    except _RefusedName as e:
        raise PthError(
            f"{path}: refused: the file asks for {e}, which a file of weights never needs "
            "(only tensors, containers and numbers are read); nothing from it was run") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, struct.error, UnicodeDecodeError, RecursionError) as e:
        raise PthError(f"{path}: damaged or not a PyTorch weights file "
                       f"({type(e).__name__}: {_first_line(e)})") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else ""


def _decode(raw: bytes, storage: _Storage, big_endian: bool, path: str) -> np.ndarray:
    """Raw storage bytes -> a 1-D array of ``storage.numel`` elements in native order."""
    dtype = storage.dtype.newbyteorder(">" if big_endian else "<")
    expected = storage.numel * dtype.itemsize
    if len(raw) < expected:
        raise PthError(f"{path}: storage {storage.key} holds {len(raw)} bytes, "
                       f"{expected} expected: the file is truncated or damaged")
    return np.frombuffer(raw, dtype, count=storage.numel).astype(storage.dtype.newbyteorder("="))


def _as_array(ref: _TensorRef, path: str) -> np.ndarray:
    """The NumPy array a tensor reference describes (a copy; bfloat16 widened to float32)."""
    storage = ref.storage
    data = storage.data
    if data is None:
        raise PthError(f"{path}: storage {storage.key} has no data: the file is damaged")
    shape, stride = ref.shape, ref.stride
    if len(shape) != len(stride) or any(s < 0 for s in shape) or any(s < 0 for s in stride):
        raise PthError(f"{path}: a tensor of storage {storage.key} has shape {shape} and "
                       f"strides {stride}: the file is damaged")
    if any(s == 0 for s in shape):
        array = np.zeros(shape, data.dtype)
    else:
        last = ref.offset + sum((n - 1) * s for n, s in zip(shape, stride))
        if ref.offset < 0 or last >= data.size:
            raise PthError(f"{path}: a tensor of shape {shape} reaches element {last} of "
                           f"storage {storage.key}, which has {data.size}: the file is damaged")
        item = data.itemsize
        array = np.lib.stride_tricks.as_strided(
            data[ref.offset:], shape, [s * item for s in stride], writeable=False).copy()
    if storage.bfloat16:
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _materialize(obj, path: str):
    """Replace every `_TensorRef` in nested dicts / lists / tuples by its array."""
    if isinstance(obj, _TensorRef):
        return _as_array(obj, path)
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _materialize(v, path)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _materialize(v, path) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_materialize(v, path) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialize(v, path) for v in obj)
    return obj


# -- zip layout ----------------------------------------------------------------
def _zip_prefix(archive: zipfile.ZipFile, path: str) -> str:
    """The top folder holding ``data.pkl`` (``archive/`` or the saved file's stem)."""
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise PthError(f"{path}: a zip file without exactly one <dir>/data.pkl: "
                       "not a PyTorch checkpoint")
    return pickles[0][:-len("data.pkl")]


def _load_zip(path: str):
    try:
        with zipfile.ZipFile(path) as archive:
            prefix = _zip_prefix(archive, path)
            names = set(archive.namelist())
            order = prefix + "byteorder"
            big = order in names and archive.read(order).strip() == b"big"
            storages: dict = {}
            obj = _unpickle(io.BytesIO(archive.read(prefix + "data.pkl")), path, storages)
            for key, storage in storages.items():
                entry = f"{prefix}data/{key}"
                if entry not in names:
                    raise PthError(f"{path}: storage {key} is missing ({entry}): "
                                   "the file is damaged")
                storage.data = _decode(archive.read(entry), storage, big, path)
    except zipfile.BadZipFile as e:
        raise PthError(f"{path}: damaged zip ({_first_line(e)}); download or save it again") \
            from None
    except (OSError, EOFError, zipfile.LargeZipFile) as e:
        raise PthError(f"{path}: cannot be read ({type(e).__name__}: {_first_line(e)})") \
            from None
    return obj, storages


# -- legacy layout -------------------------------------------------------------
def _plain_load(file, path: str, what: str):
    """One of the legacy header pickles: numbers and dicts only (same restrictions)."""
    try:
        return _unpickle(file, path, {})
    except PthError:
        raise PthError(f"{path}: not a PyTorch checkpoint (no readable {what}); "
                       "PyTorch .pth files are a zip archive or start with torch's magic "
                       "number") from None


def _load_legacy(path: str):
    with open(path, "rb") as f:
        head = f.read(512)
        if len(head) >= 262 and head[257:262] == b"ustar":
            raise PthError(f"{path}: a tar checkpoint of PyTorch < 0.4, which is not "
                           "supported; load it with that PyTorch and torch.save it again")
        f.seek(0)
        if _plain_load(f, path, "magic number") != LEGACY_MAGIC:
            raise PthError(f"{path}: not a PyTorch checkpoint (wrong magic number)")
        if _plain_load(f, path, "protocol version") != LEGACY_PROTOCOL:
            raise PthError(f"{path}: unsupported legacy PyTorch protocol version")
        info = _plain_load(f, path, "system information")
        big = isinstance(info, dict) and info.get("little_endian") is False
        storages: dict = {}
        obj = _unpickle(f, path, storages)
        keys = _unpickle(f, path, {})
        if not isinstance(keys, list):
            raise PthError(f"{path}: damaged legacy checkpoint (no storage key list)")
        for key in keys:
            storage = storages.get(str(key))
            if storage is None:
                raise PthError(f"{path}: storage {key} is listed but never used: damaged file")
            _read_legacy_storage(f, storage, big, path)
    _fill_views(storages)
    return obj, storages


def _read_legacy_storage(f, storage: _Storage, big: bool, path: str):
    """An int64 element count, then the storage's raw bytes."""
    header = f.read(8)
    if len(header) < 8:
        raise PthError(f"{path}: ends before storage {storage.key}: the file is truncated")
    (numel,) = struct.unpack(">q" if big else "<q", header)
    if numel != storage.numel:
        raise PthError(f"{path}: storage {storage.key} has {numel} elements, the pickle "
                       f"says {storage.numel}: the file is damaged")
    raw = f.read(numel * storage.dtype.itemsize)
    storage.data = _decode(raw, storage, big, path)


def _fill_views(storages: dict):
    """Give legacy storage views the slice of their parent's bytes."""
    for storage in storages.values():
        for offset, view in storage.views:
            view.data = storage.data[offset:offset + view.numel]


# -- entry point ---------------------------------------------------------------
def load(path: str):
    """Read a ``.pth`` file: its object with every tensor as a NumPy array.

    No PyTorch is needed, and loading is safe: the pickle may name only tensors, storages
    and plain containers, so nothing named by the file is ever called.

    Args:
      path: a file written by ``torch.save`` (zip or legacy layout).

    Returns:
      The saved object (typically an ``OrderedDict`` of name -> array, or a dict holding
      such state dicts), tensors copied into native-order NumPy arrays (bfloat16 as
      float32).

    Raises:
      PthError: one line naming the file, for a missing, truncated or damaged file and for
        any pickled name outside tensors, storages and plain containers.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            signature = f.read(4)
    except OSError as e:
        raise PthError(f"{path}: cannot be read ({e.strerror or e})") from None
    if signature == _ZIP_SIGNATURE or zipfile.is_zipfile(path):
        obj, _ = _load_zip(path)
    else:
        obj, _ = _load_legacy(path)
    try:
        return _materialize(obj, path)
    except (AttributeError, TypeError, ValueError, IndexError, RecursionError) as e:
        if isinstance(e, PthError):
            raise
        raise PthError(f"{path}: damaged tensor records ({type(e).__name__}: "
                       f"{_first_line(e)})") from None
