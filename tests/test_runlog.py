"""Tests for autogan_tf.runlog: JSON lines, TensorBoard events, progress, grids, checkpoints."""

import io
import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from autogan_tf import checkpointing, rundir, runlog
from autogan_tf.images import make_grid, save_png


def strict_json_lines(path):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    with open(path, encoding="utf-8") as f:
        return [json.loads(line, parse_constant=refuse) for line in f]


# -- JSON lines ------------------------------------------------------------------
def test_jsonl_round_trip_and_non_finite_values(tmp_path):
    log = runlog.RunLog(str(tmp_path / "run"), name="metrics")
    log.log({"step": np.int64(3), "loss": np.float32(0.5), "t": tf.constant(2.25),
             "v": tf.Variable(7), "arr": np.arange(3), "nested": {"x": [np.float64(1.5)]},
             "nan": float("nan"), "inf": np.float32(np.inf), "ninf": -np.inf, "flag": np.bool_(1),
             "name": "a", "none": None, "time": 1.0})
    # Flushed at every write: readable before close.
    (rec,) = strict_json_lines(tmp_path / "run" / "metrics.jsonl")
    assert rec == {"step": 3, "loss": 0.5, "t": 2.25, "v": 7, "arr": [0, 1, 2],
                   "nested": {"x": [1.5]}, "nan": "nan", "inf": "inf", "ninf": "-inf",
                   "flag": True, "name": "a", "none": None, "time": 1.0}
    assert isinstance(rec["step"], int) and isinstance(rec["flag"], bool)
    log.close()
    again = runlog.RunLog(str(tmp_path / "run"), name="metrics")  # appends
    again.log({"step": 4})
    again.close()
    recs = strict_json_lines(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in recs] == [3, 4]
    assert isinstance(recs[1]["time"], float)  # a wall clock is added when absent


def test_non_chief_writes_nothing(tmp_path):
    log = runlog.RunLog(str(tmp_path / "run"), is_chief=False, stream=io.StringIO())
    log.log({"a": 1})
    log.scalars(1, {"a": 1.0})
    log.progress(1, 10)
    log.close()
    assert not (tmp_path / "run").exists()


# -- TensorBoard -----------------------------------------------------------------
def read_events(directory):
    out = []
    for name in sorted(os.listdir(directory)):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
            for value in event.summary.value:
                out.append((event.step, value))
    return out


def test_tensorboard_scalars_and_images_are_readable(tmp_path):
    log = runlog.RunLog(str(tmp_path), name="m")
    log.scalars(5, {"loss/g": np.float32(1.25), "lr": 2e-4, "label": "skip me", "bad": np.nan})
    log.scalars(6, {"loss/g": 0.75})
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 256, (10, 14, 3)).astype(np.uint8)
    log.image(6, "samples", grid)
    log.close()
    events = read_events(tmp_path / rundir.LOGS)
    scalars = [(s, v.tag, float(tf.make_ndarray(v.tensor))) for s, v in events
               if v.metadata.plugin_data.plugin_name == "scalars"]
    assert sorted(scalars)[:3] == [(5, "bad", pytest.approx(np.nan, nan_ok=True)),
                                   (5, "loss/g", 1.25), (5, "lr", pytest.approx(2e-4))]
    assert (6, "loss/g", 0.75) in scalars
    assert all(tag != "label" for _, tag, _ in scalars)
    (image_event,) = [(s, v) for s, v in events if v.metadata.plugin_data.plugin_name == "images"]
    step, value = image_event
    width, height, png = tf.make_ndarray(value.tensor)
    assert step == 6 and value.tag == "samples" and (int(width), int(height)) == (14, 10)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), grid)


# -- progress --------------------------------------------------------------------
class FakeTty(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_pipe_prints_periodically(tmp_path):
    stream = io.StringIO()
    log = runlog.RunLog(str(tmp_path), stream=stream, progress_interval=3600)
    log.progress(0, 100, d_loss=np.float32(0.5))
    log.progress(50, 100, d_loss=0.25)  # within the interval: quiet
    log.progress(100, 100, d_loss=0.125, g_loss=float("nan"))  # the end is always shown
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "0/100" in lines[0] and "d_loss=0.5" in lines[0] and "? it/s ETA ?" in lines[0]
    assert "nan" not in lines[0]
    assert "100/100" in lines[1] and "100.0%" in lines[1] and "it/s" in lines[1]
    assert "d_loss=0.125" in lines[1] and "g_loss=nan" in lines[1]
    assert "\r" not in stream.getvalue()


def test_progress_on_a_terminal_redraws_with_rate_and_eta(tmp_path, monkeypatch):
    stream = FakeTty()
    clock = iter([1000.0, 1010.0, 1020.0])
    monkeypatch.setattr(runlog.time, "time", lambda: next(clock))
    log = runlog.RunLog(str(tmp_path), stream=stream, progress_interval=3600)
    log.progress(0, 100)
    log.progress(20, 100)  # 2 it/s, 80 steps left: 40 s
    log.progress(30, 100)
    text = stream.getvalue()
    assert text.count("\r") == 3
    assert "2 it/s ETA 40s" in text and "1.5 it/s ETA 47s" in text
    log.close()
    assert stream.getvalue().endswith("\n")


# -- images ----------------------------------------------------------------------
def test_make_grid_layout():
    images = np.stack([np.full((2, 3, 3), 10 * (i + 1), np.uint8) for i in range(5)])
    grid = make_grid(images, nrow=2, padding=1, pad_value=255)
    assert grid.shape == (3 * 3 + 1, 2 * 4 + 1, 3) and grid.dtype == np.uint8
    for i in range(5):
        r, c = divmod(i, 2)
        block = grid[1 + 3 * r:1 + 3 * r + 2, 1 + 4 * c:1 + 4 * c + 3]
        assert np.all(block == 10 * (i + 1))
    assert np.all(grid[0] == 255) and np.all(grid[:, 4] == 255)
    assert np.all(grid[7:9, 5:8] == 255)  # the empty sixth slot
    assert make_grid(images[:1, :, :, 0], nrow=8, padding=0).shape == (2, 3, 1)


def test_make_grid_and_save_png_refuse_bad_images(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        make_grid(np.zeros((2, 4, 4, 3), np.float32), 2)
    with pytest.raises(ValueError, match="nrow"):
        make_grid(np.zeros((2, 4, 4, 3), np.uint8), 0)
    with pytest.raises(ValueError, match="uint8"):
        save_png(str(tmp_path / "x.png"), np.zeros((4, 4, 2), np.uint8))


def test_save_png_round_trip(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (9, 7, 3)).astype(np.uint8)
    path = save_png(str(tmp_path / "deep" / "dir" / "a.png"), image)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    assert os.listdir(tmp_path / "deep" / "dir") == ["a.png"]


# -- atomic JSON -----------------------------------------------------------------
def test_write_json_atomic(tmp_path, monkeypatch):
    path = str(tmp_path / "new" / "result.json")
    runlog.write_json_atomic(path, {"a": np.float32(1.5), "b": float("nan")})
    with open(path) as f:
        assert json.load(f) == {"a": 1.5, "b": "nan"}

    def broken_replace(src, dst):
        raise OSError("disk went away")

    monkeypatch.setattr(runlog.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk went away"):
        runlog.write_json_atomic(path, {"a": 2})
    with open(path) as f:
        assert json.load(f)["a"] == 1.5  # the old file is intact
    assert os.listdir(tmp_path / "new") == ["result.json"]  # no temp file left


# -- checkpoints -----------------------------------------------------------------
def make_checkpoints(directory, values=(1.0, 2.0, 3.0)):
    var = tf.Variable(0.0)
    ckpt = tf.train.Checkpoint(v=var)
    manager = tf.train.CheckpointManager(ckpt, str(directory), max_to_keep=5)
    for value in values:
        var.assign(value)
        manager.save()
    var.assign(-1.0)
    return var, ckpt, manager


def data_file(prefix):
    (name,) = [n for n in os.listdir(os.path.dirname(prefix))
               if n.startswith(os.path.basename(prefix) + ".data")]
    return os.path.join(os.path.dirname(prefix), name)


@pytest.mark.parametrize("damage", ["truncate_data", "flip_data", "truncate_index"])
def test_restore_latest_skips_a_damaged_newest_checkpoint(tmp_path, caplog, damage):
    var, ckpt, manager = make_checkpoints(tmp_path / "ckpts")
    newest = manager.latest_checkpoint
    if damage == "truncate_index":
        target = newest + ".index"
        size = os.path.getsize(target)
        with open(target, "r+b") as f:
            f.truncate(size // 2)
    else:
        target = data_file(newest)
        if damage == "truncate_data":
            with open(target, "r+b") as f:
                f.truncate(2)
        else:
            with open(target, "r+b") as f:
                raw = bytearray(f.read())
                raw[0] ^= 0xFF
                f.seek(0)
                f.write(raw)
    with caplog.at_level(logging.WARNING):
        restored = checkpointing.restore_latest(manager, ckpt)
    assert restored == manager.checkpoints[-2]
    assert float(var) == 2.0
    assert any(newest in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_restore_latest_intact_missing_and_hopeless(tmp_path):
    var, ckpt, manager = make_checkpoints(tmp_path / "ok")
    assert checkpointing.restore_latest(manager, ckpt) == manager.latest_checkpoint
    assert float(var) == 3.0
    # The manager's state file lost: checkpoints on disk are still found.
    os.remove(tmp_path / "ok" / "checkpoint")
    var2 = tf.Variable(0.0)
    ckpt2 = tf.train.Checkpoint(v=var2)
    lost = tf.train.CheckpointManager(ckpt2, str(tmp_path / "ok"), max_to_keep=5)
    assert checkpointing.restore_latest(lost, ckpt2).endswith("ckpt-3") and float(var2) == 3.0
    # An empty directory: nothing to restore.
    empty = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(0.0)),
                                       str(tmp_path / "empty"), max_to_keep=2)
    assert checkpointing.restore_latest(empty, empty._checkpoint) is None
    # Every checkpoint damaged: an error, never a silent fresh start.
    var3, ckpt3, bad = make_checkpoints(tmp_path / "bad", values=(1.0, 2.0))
    for prefix in bad.checkpoints:
        with open(data_file(prefix), "r+b") as f:
            f.truncate(1)
    with pytest.raises(checkpointing.CheckpointError, match="ckpt-2.*ckpt-1"):
        checkpointing.restore_latest(bad, ckpt3)


# -- output directory ------------------------------------------------------------
def test_check_writable(tmp_path):
    good = str(tmp_path / "a" / "b")
    assert rundir.check_writable(good) == good and os.path.isdir(good)
    assert os.listdir(good) == []  # the probe is removed
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(rundir.ModelDirError, match=r"--model_dir=.*file/sub cannot be created"):
        rundir.check_writable(str(blocker / "sub"))
    with pytest.raises(rundir.ModelDirError, match="--output_dir=.* is not a directory"):
        rundir.check_writable(str(blocker), flag="--output_dir")
    with pytest.raises(rundir.ModelDirError, match="MB free"):
        rundir.check_writable(good, min_free_mb=1e12)
    with pytest.raises(rundir.ModelDirError, match="--model_dir is required"):
        rundir.check_writable("")
