"""Importing official AutoGAN checkpoints: the .pth reader, the importer, the command line.

The fixtures in tests/data were written by the official PyTorch code
(``tools/make_import_fixture.py``, in a separate environment with PyTorch);
nothing here imports torch. The images the official models produced for a fixed
``z`` are the reference: the imported, exported generator must reproduce them.
"""

import collections
import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from autogan_tf.official import pth

DATA = os.path.join(os.path.dirname(__file__), "data")
LEGACY_A = os.path.join(DATA, "official_a_gf8_bw4_legacy.pth")  # train.py checkpoint, a
ZIP_C = os.path.join(DATA, "official_c_gf8_bw3_zip.pth")  # bare state dict, c, bottom 3
OUTPUTS = os.path.join(DATA, "official_outputs.npz")
GF_DIM = 8


# -- writing .pth files without torch ------------------------------------------
_STORAGE_NAMES = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage",
                  np.dtype("float64"): "DoubleStorage", np.dtype("float16"): "HalfStorage"}


class _Opcodes:
    """Protocol-2 pickle opcodes, written by hand as torch.save does (torch is not here)."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")

    def text(self, value):
        data = value.encode()
        self.out += b"X" + struct.pack("<I", len(data)) + data

    def glob(self, module, name):
        self.out += f"c{module}\n{name}\n".encode()

    def int(self, value):
        self.out += b"J" + struct.pack("<i", value)

    def tuple(self, values):
        self.out += b"("
        for v in values:
            self.int(v)
        self.out += b"t"

    def ordered_dict(self):
        self.glob("collections", "OrderedDict")
        self.out += b")R"


def _tensor(op, key, array):
    """``_rebuild_tensor_v2((storage pid), 0, shape, strides, False, OrderedDict())``."""
    op.glob("torch._utils", "_rebuild_tensor_v2")
    op.out += b"(("
    op.text("storage")
    op.glob("torch", _STORAGE_NAMES[array.dtype])
    op.text(key)
    op.text("cpu")
    op.int(array.size)
    op.out += b"tQ"
    op.int(0)
    op.tuple(array.shape)
    op.tuple([s // array.itemsize for s in array.strides])
    op.out += b"\x89"
    op.ordered_dict()
    op.out += b"tR"


def state_dict_pickle(state):
    """data.pkl of an OrderedDict of tensors; storages keyed "0", "1", ..."""
    op = _Opcodes()
    op.ordered_dict()
    op.out += b"("
    for i, (name, array) in enumerate(state.items()):
        op.text(name)
        _tensor(op, str(i), np.array(array, order="C"))
    op.out += b"u."
    return bytes(op.out)


def write_zip_pth(path, pickle_bytes, storages=()):
    """A zip-layout .pth: ``archive/data.pkl``, ``archive/data/<key>``, byteorder."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        z.writestr("archive/byteorder", "little")
        for key, array in storages:
            z.writestr(f"archive/data/{key}", np.array(array, order="C").astype(
                array.dtype.newbyteorder("<")).tobytes())
        z.writestr("archive/version", "3\n")
    return str(path)


def write_state_dict(path, state):
    """A zip-layout .pth holding ``state`` (name -> array), as torch.save writes it."""
    return write_zip_pth(path, state_dict_pickle(state),
                         [(str(i), a) for i, a in enumerate(state.values())])


class _Call:
    """Pickles as a call of ``func(*args)``: what a malicious file would contain."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def legacy_bytes(obj_pickle):
    """A legacy-layout .pth around one (already pickled) object and no storages."""
    head = b"".join(pickle.dumps(x, protocol=2) for x in
                    (pth.LEGACY_MAGIC, pth.LEGACY_PROTOCOL,
                     {"protocol_version": 1001, "little_endian": True}))
    return head + obj_pickle + pickle.dumps([], protocol=2)


# -- the reader ----------------------------------------------------------------
def test_reads_both_layouts_written_by_torch():
    legacy = pth.load(LEGACY_A)
    assert legacy["epoch"] == 7 and legacy["gen_model"] == "autogan_cifar10_a"
    avg = legacy["avg_gen_state_dict"]
    assert isinstance(avg, collections.OrderedDict)
    assert avg["l1.weight"].shape == (16 * GF_DIM, 128) and avg["l1.weight"].dtype == np.float32
    assert avg["to_rgb.0.num_batches_tracked"].dtype == np.int64
    assert avg["to_rgb.0.num_batches_tracked"] > 0
    assert not np.array_equal(avg["l1.weight"], legacy["gen_state_dict"]["l1.weight"])
    bare = pth.load(ZIP_C)
    assert bare["l1.weight"].shape == (9 * GF_DIM, 128)
    assert "cell1.n1.running_var" in bare


def test_hand_written_zip_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    state = collections.OrderedDict(
        w=rng.normal(size=(3, 4)).astype(np.float32), n=np.array(5, np.int64),
        d=rng.normal(size=2), h=np.array([1.5, -2], np.float16))
    loaded = pth.load(write_state_dict(tmp_path / "s.pth", state))
    assert list(loaded) == list(state)
    for k in state:
        assert loaded[k].dtype == state[k].dtype and np.array_equal(loaded[k], state[k])


@pytest.mark.parametrize("layout", ["zip", "legacy"])
@pytest.mark.parametrize("payload", ["os.system", "nested", "eval", "unknown_class"])
def test_code_in_a_file_is_refused_and_never_runs(tmp_path, layout, payload):
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    obj = {"os.system": lambda: _Call(os.system, command),
           "nested": lambda: collections.OrderedDict(
               w=[1, {"x": _Call(os.system, command)}]),
           "eval": lambda: _Call(eval, f"open({str(marker)!r}, 'w')"),
           "unknown_class": lambda: {"args": __import__("argparse").Namespace(lr=1)}}[payload]()
    data = pickle.dumps(obj, protocol=2)
    path = tmp_path / "evil.pth"
    if layout == "zip":
        write_zip_pth(path, data)
    else:
        path.write_bytes(legacy_bytes(data))
    with pytest.raises(pth.PthError) as e:
        pth.load(path)
    message = str(e.value)
    assert "\n" not in message and str(path) in message and "refused" in message
    assert "nothing from it was run" in message
    expected = {"os.system": ("posix.system", "nt.system"), "nested": ("posix.system",
                "nt.system"), "eval": ("builtins.eval",), "unknown_class": ("argparse.Namespace",)}
    assert any(name in message for name in expected[payload]), message
    assert not marker.exists()


def _damaged(tmp_path, source, how):
    data = bytearray(open(source, "rb").read())
    if how == "truncated":
        data = data[:len(data) // 2]
    elif how == "tail":
        data = data[:-40]
    elif how == "flipped":  # a byte inside the largest storage (l1.weight)
        data[len(data) // 3] ^= 0xFF
    path = tmp_path / f"{how}.pth"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("source,how,words", [
    (ZIP_C, "truncated", "damaged zip"),
    (ZIP_C, "flipped", "damaged zip"),
    (LEGACY_A, "truncated", "truncated"),
    (LEGACY_A, "tail", "truncated"),
])
def test_damaged_files_are_refused(tmp_path, source, how, words):
    path = _damaged(tmp_path, source, how)
    with pytest.raises(pth.PthError) as e:
        pth.load(path)
    assert words in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_not_a_checkpoint(tmp_path):
    for name, data in [("text.pth", b"hello world\n"), ("empty.pth", b""),
                       ("pickle.pth", pickle.dumps({"a": 1}, protocol=2))]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(pth.PthError, match="not a PyTorch checkpoint"):
            pth.load(path)
    with pytest.raises(pth.PthError, match="cannot be read"):
        pth.load(tmp_path / "missing.pth")


def test_zip_without_a_storage_entry(tmp_path):
    state = {"w": np.ones((2, 2), np.float32)}
    path = write_zip_pth(tmp_path / "s.pth", state_dict_pickle(state))  # no data/0
    with pytest.raises(pth.PthError, match="storage 0 is missing"):
        pth.load(path)


def test_tensor_beyond_its_storage(tmp_path):
    state = {"w": np.ones((2, 2), np.float32)}
    path = write_zip_pth(tmp_path / "s.pth", state_dict_pickle(state),
                         [("0", np.ones(4, np.float32))])
    assert pth.load(path)["w"].shape == (2, 2)
    data = state_dict_pickle(state).replace(b"J\x04\x00\x00\x00", b"J\x02\x00\x00\x00", 1)
    path = write_zip_pth(tmp_path / "short.pth", data, [("0", np.ones(2, np.float32))])
    with pytest.raises(pth.PthError, match="reaches element 3 of storage 0"):
        pth.load(path)
