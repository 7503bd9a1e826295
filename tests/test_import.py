"""Importing official AutoGAN checkpoints: the .pth reader, the importer, the command line.

The fixtures in tests/data were written by the official PyTorch code
(``tools/make_import_fixture.py``, in a separate environment with PyTorch);
nothing here imports torch. The images the official models produced for a fixed
``z`` are the reference: the imported, exported generator must reproduce them.
"""

import collections
import functools
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from autogan_tf.official import pth

from conftest import run_cli

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


def _tensor(op, key, array, module="torch", location="cpu"):
    """``_rebuild_tensor_v2((storage pid), 0, shape, strides, False, OrderedDict())``."""
    op.glob("torch._utils", "_rebuild_tensor_v2")
    op.out += b"(("
    op.text("storage")
    op.glob(module, _STORAGE_NAMES[array.dtype])
    op.text(key)
    op.text(location)
    op.int(array.size)
    op.out += b"tQ"
    op.int(0)
    op.tuple(array.shape)
    op.tuple([s // array.itemsize for s in array.strides])
    op.out += b"\x89"
    op.ordered_dict()
    op.out += b"tR"


def state_dict_pickle(state, **where):
    """data.pkl of an OrderedDict of tensors; storages keyed "0", "1", ...

    ``where``: ``module`` and ``location`` of the storages (e.g. a GPU's).
    """
    op = _Opcodes()
    op.ordered_dict()
    op.out += b"("
    for i, (name, array) in enumerate(state.items()):
        op.text(name)
        _tensor(op, str(i), np.array(array, order="C"), **where)
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


def _flatten(obj, prefix="containers"):
    if isinstance(obj, np.ndarray):
        return {prefix: obj}
    items = obj.items() if isinstance(obj, dict) else (
        enumerate(obj) if isinstance(obj, (list, tuple)) else ())
    out = {}
    for key, value in items:
        out.update(_flatten(value, f"{prefix}/{key}"))
    return out


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_reads_what_else_a_training_checkpoint_holds(layout):
    """Adam state (int keys, tuples), Parameter, half/bfloat16/int8/bool, views, empty."""
    obj = pth.load(os.path.join(DATA, f"torch_containers_{layout}.pth"))
    expected = np.load(os.path.join(DATA, "torch_containers_expected.npz"))
    found = _flatten(obj)
    assert sorted(found) == sorted(expected.files)
    for key in expected.files:
        assert found[key].dtype == expected[key].dtype, key
        assert found[key].shape == expected[key].shape, key
        assert np.array_equal(found[key], expected[key]), key
    assert obj["epoch"] == 7 and obj["betas"] == (0.0, 0.9) and obj["name"] == "x"
    group = obj["optimizer"]["param_groups"][0]
    assert group["lr"] == 2e-4 and group["betas"] == (0.0, 0.9) and group["params"] == [0, 1]


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


def test_tensors_saved_on_a_gpu_are_read_on_the_cpu(tmp_path):
    state = collections.OrderedDict(w=np.arange(6, dtype=np.float32).reshape(2, 3))
    data = state_dict_pickle(state, module="torch.cuda", location="cuda:0")
    loaded = pth.load(write_zip_pth(tmp_path / "gpu.pth", data, [("0", state["w"])]))
    assert np.array_equal(loaded["w"], state["w"])


def test_legacy_storage_views(tmp_path):
    """PyTorch 0.4-era legacy files may point a tensor into a view of a larger storage."""
    op = _Opcodes()
    op.ordered_dict()
    op.out += b"("
    op.text("part")
    op.glob("torch._utils", "_rebuild_tensor_v2")
    op.out += b"(("
    op.text("storage")
    op.glob("torch", "FloatStorage")
    op.text("base")
    op.text("cuda:0")
    op.int(8)
    op.out += b"("  # view metadata: (view key, offset, size)
    op.text("view")
    op.int(2)
    op.int(4)
    op.out += b"ttQ"
    op.int(1)
    op.tuple((3,))
    op.tuple((1,))
    op.out += b"\x89"
    op.ordered_dict()
    op.out += b"tRu."
    storage = np.arange(8, dtype=np.float32)
    tail = struct.pack("<q", 8) + storage.tobytes()
    path = tmp_path / "views.pth"
    path.write_bytes(legacy_bytes(bytes(op.out))[:-len(pickle.dumps([], protocol=2))]
                     + pickle.dumps(["base"], protocol=2) + tail)
    assert np.array_equal(pth.load(path)["part"], [3, 4, 5])
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(pth.PthError, match="storage base holds 28 bytes, 32 expected"):
        pth.load(path)


def test_tensor_records_rewritten_by_the_pickle_are_refused(tmp_path):
    """BUILD can set attributes of any object the pickle made, ours included."""
    op = _Opcodes()
    _tensor(op, "0", np.ones(2, np.float32))
    op.out += b"(N}"  # state (None, {"storage": 5})
    op.text("storage")
    op.int(5)
    op.out += b"stb."
    path = write_zip_pth(tmp_path / "b.pth", bytes(op.out), [("0", np.ones(2, np.float32))])
    with pytest.raises(pth.PthError, match="damaged tensor records"):
        pth.load(path)


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


# -- the importer --------------------------------------------------------------
def _official():
    return np.load(OUTPUTS)


def _scaled(images):
    """The official uint8 conversion before truncation: x*127.5+127.5, clamped."""
    return np.clip(images.astype(np.float64) * 127.5 + 127.5, 0, 255)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Both fixtures imported into run directories (arch a legacy, arch c zip)."""
    from autogan_tf.official import importer

    base = tmp_path_factory.mktemp("import")
    lines = []
    runs = {
        "official_a_gf8_bw4_legacy": importer.import_checkpoint(
            LEGACY_A, "autogan_cifar10_a", GF_DIM, 4, str(base / "a"), echo=lines.append),
        "official_c_gf8_bw3_zip": importer.import_checkpoint(
            ZIP_C, "1 1 1 1 1 0 0 1 1 1 0 1 0 3", GF_DIM, 3, str(base / "c"),
            echo=lines.append),
    }
    return runs, lines


def test_import_says_which_weights_it_used(imported):
    runs, lines = imported
    assert runs["official_a_gf8_bw4_legacy"].state_dict == "avg_gen_state_dict"
    assert runs["official_c_gf8_bw3_zip"].state_dict == "state_dict"
    assert "avg_gen_state_dict" in lines[0] and "the generator state dict" in lines[1]
    run = runs["official_a_gf8_bw4_legacy"].model_dir
    assert sorted(os.listdir(run)) == [".lock", "checkpoints", "config.json", "import.json"]
    assert sorted(os.listdir(os.path.dirname(run))) == ["a", "c"]  # no staging directory left


@pytest.mark.parametrize("name", ["official_a_gf8_bw4_legacy", "official_c_gf8_bw3_zip"])
def test_restored_run_reproduces_the_official_images(imported, name):
    """What autogan-evaluate and autogan-export restore equals the official model's output."""
    from autogan_tf import training

    generator, config, checkpoint = training.restore_generator(imported[0][name].model_dir)
    official = _official()
    ours = generator(official["z"], training=False).numpy()
    assert ours.shape == official[f"{name}_images"].shape
    assert np.abs(ours - official[f"{name}_images"]).max() < 1e-5
    assert checkpoint.endswith("ckpt-0") and config.gf_dim == GF_DIM
    # The raw weights are the imported ones too (a resumed autogan-train starts from them).
    raw, _, _ = training.restore_generator(imported[0][name].model_dir, ema=False)
    assert np.array_equal(raw(official["z"], training=False).numpy(), ours)


def test_exported_serving_default_equals_the_official_images(imported, tmp_path):
    """Import -> autogan-export's steps -> SavedModel: uint8 images as the official validate()."""
    import tensorflow as tf

    from autogan_tf import training
    from autogan_tf.serving import export

    name = "official_a_gf8_bw4_legacy"
    generator, _, _ = training.restore_generator(imported[0][name].model_dir)
    path = export.export_generator(generator, str(tmp_path / "autogan"), 1, max_batch=8,
                                   warmup_requests=1)
    official = _official()
    served = tf.saved_model.load(path).signatures["serving_default"](
        z=tf.constant(official["z"]))["images"].numpy()
    expected = official[f"{name}_uint8"]
    assert served.dtype == np.uint8 and served.shape == expected.shape
    # Equal, except where the official value lies within float32 rounding of a level boundary.
    scaled = _scaled(official[f"{name}_images"])
    near_boundary = np.abs(scaled - np.round(scaled)) < 1e-3
    differ = served != expected
    assert np.all(near_boundary[differ]), np.argwhere(differ & ~near_boundary)[:5]
    assert np.abs(served.astype(int) - expected.astype(int)).max() <= 1
    assert served.std() > 5  # not a constant image


def test_select_state_dict_prefers_the_ema_weights():
    from autogan_tf.official import importer

    ema, raw = {"w": np.ones(2)}, {"w": np.zeros(2)}
    assert importer.select_state_dict({"avg_gen_state_dict": ema, "gen_state_dict": raw,
                                       "epoch": 3}, "f.pth") == (ema, "avg_gen_state_dict")
    assert importer.select_state_dict({"gen_state_dict": raw, "epoch": 3},
                                      "f.pth") == (raw, "gen_state_dict")
    assert importer.select_state_dict(raw, "f.pth") == (raw, "state_dict")
    for bad, words in [({"epoch": 3, "dis_state_dict": raw}, "top-level keys: dis_state_dict"),
                       ([1, 2], "holds a list"),
                       ({"avg_gen_state_dict": {"w": 1}}, "avg_gen_state_dict is not")]:
        with pytest.raises(importer.ImportCheckpointError, match=words):
            importer.select_state_dict(bad, "f.pth")


def test_search_layout_state_dict_imports(tmp_path):
    """A state dict with the supernet's names (official train_derived.py) maps too."""
    from autogan_tf import models, training
    from autogan_tf.official import importer, weights

    source = models.DerivedGenerator("autogan_cifar10_c", GF_DIM, 128, 3)
    state = weights.generator_state(source, layout="search")
    path = write_state_dict(tmp_path / "search.pth", state)
    result = importer.import_checkpoint(path, "autogan_cifar10_c", GF_DIM, 3,
                                        str(tmp_path / "run"), echo=None)
    restored, _, _ = training.restore_generator(result.model_dir)
    z = _official()["z"]
    assert np.array_equal(restored(z, training=False).numpy(),
                          source(z, training=False).numpy())


def _bare_c_state():
    return collections.OrderedDict(pth.load(ZIP_C))


def _edit_missing(state):
    del state["cell2.c1.bias"]
    return "missing: cell2.c1.bias"


def _edit_misshaped(state):
    state["cell1.c1.weight"] = np.ascontiguousarray(state["cell1.c1.weight"][:, :4])
    return "cell1.c1.weight: expected shape (8, 8, 3, 3), found (8, 4, 3, 3)"


def _edit_extra(state):
    state["cell4.c1.weight"] = np.zeros((8, 8, 3, 3), np.float32)
    return "unexpected: cell4.c1.weight"


@pytest.mark.parametrize("edit", [_edit_missing, _edit_misshaped, _edit_extra])
def test_state_dict_that_does_not_fit_is_refused_before_writing(tmp_path, edit):
    from autogan_tf.official import importer

    state = _bare_c_state()
    words = edit(state)
    path = write_state_dict(tmp_path / "edited.pth", state)
    target = tmp_path / "out" / "run"
    with pytest.raises(importer.ImportCheckpointError) as e:
        importer.import_checkpoint(path, "autogan_cifar10_c", GF_DIM, 3, str(target))
    message = str(e.value)
    assert words in message and path in message and "\n" not in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["os.system", "truncated", "wrong_arch", "wrong_width"])
def test_bad_inputs_write_no_model_dir(tmp_path, case):
    from autogan_tf.official import importer

    marker = tmp_path / "pwned"
    path, arch, gf_dim, words = ZIP_C, "autogan_cifar10_c", GF_DIM, None
    if case == "os.system":
        path = write_zip_pth(tmp_path / "evil.pth",
                             pickle.dumps(_Call(os.system, f"touch {marker}"), protocol=2))
        words = "refused"
    elif case == "truncated":
        path, words = str(_damaged(tmp_path, ZIP_C, "truncated")), "damaged zip"
    elif case == "wrong_arch":
        arch, words = "autogan_cifar10_a", "check --arch"
    else:
        gf_dim, words = 16, "suggest --gf_dim=8 --bottom_width=3 --latent_dim=128"
    target = tmp_path / "out" / "run"
    with pytest.raises((pth.PthError, importer.ImportCheckpointError), match=words):
        importer.import_checkpoint(path, arch, gf_dim, 3, str(target))
    assert not (tmp_path / "out").exists() and not marker.exists()


def test_existing_model_dir_is_refused(tmp_path):
    from autogan_tf.official import importer

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    with pytest.raises(importer.ImportCheckpointError, match="not an empty directory"):
        importer.import_checkpoint(ZIP_C, "autogan_cifar10_c", GF_DIM, 3, str(tmp_path / "run"))
    assert os.listdir(tmp_path / "run") == ["config.json"]  # refused before it is held


# -- the command line ----------------------------------------------------------
_cli = functools.partial(run_cli, "import_checkpoint")


def test_cli_imports_and_refuses_in_one_line(tmp_path):
    run = tmp_path / "empty_dir"
    run.mkdir()  # an empty directory is accepted
    done = _cli(f"--checkpoint={ZIP_C}", "--arch=autogan_cifar10_c", f"--gf_dim={GF_DIM}",
                "--bottom_width=3", f"--model_dir={run}")
    assert done.returncode == 0, done.stderr
    assert "imported the generator state dict" in done.stdout
    assert sorted(os.listdir(run)) == [".lock", "checkpoints", "config.json", "import.json"]

    marker = tmp_path / "pwned"
    evil = write_zip_pth(tmp_path / "evil.pth",
                         pickle.dumps(_Call(os.system, f"touch {marker}"), protocol=2))
    refused = _cli(f"--checkpoint={evil}", "--arch=autogan_cifar10_a", "--gf_dim=8",
                   f"--model_dir={tmp_path / 'evil_run'}")
    assert refused.returncode == 1
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("autogan-import: ") and "refused" in last and evil in last
    assert not marker.exists() and not (tmp_path / "evil_run").exists()
