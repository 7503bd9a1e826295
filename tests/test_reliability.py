"""Reliability, fast part: bad input through the real command lines, NaN restore-and-retry,
SIGTERM checkpointing, failed checkpoint writes, untrusted model files, serving abuse.

The kill -9 / resume loops are in tests/test_kill_resume.py (``pytest -m slow``).
"""

import ast
import concurrent.futures
import errno
import os
import signal
import threading

import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import checkpointing, errors, gan_trainer, lifecycle, rundir, training
from autogan_tf import config as config_lib
from autogan_tf.metrics import classifiers, scores
from autogan_tf.search import loop as search
from autogan_tf.testing import faults

from conftest import ROOT, TINY_GAN, brightness_reward, flag_args, run_cli

ARCH2 = "1 0 1 1 1 0 0 1 1"  # two cells: 16 x 16 images


# ---------------------------------------------------------------------------
# Shared files: a tiny classifier, broken inputs
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("inputs")
    clf = str(base / "clf16.keras")
    classifiers.build_classifier(num_classes=5, image_size=16, width=4).save(clf)  # 16-d features
    lam = str(base / "lambda.keras")
    import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="code")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    keras.Model(inputs, keras.layers.Dense(5, name="logits")(x)).save(lam)
    wrong_dim = str(base / "wrong_dim.npz")
    scores.save_statistics(wrong_dim, scores.Statistics(np.zeros(7), np.eye(7),
                                                        classifier="keras:clf16.keras"))
    folder = base / "pictures" / "dots"
    folder.mkdir(parents=True)
    for i in range(3):
        tf.io.write_file(str(folder / f"ok{i}.png"),
                         tf.io.encode_png(tf.fill([16, 16, 3], tf.constant(40 * i, tf.uint8))))
    (folder / "not_an_image.jpg").write_bytes(b"GIF89a? no, plain text pretending")
    return {"clf": clf, "lambda": lam, "wrong_dim": wrong_dim,
            "folder": str(base / "pictures"), "base": base}


def search_flags(model_dir, clf, **overrides):
    flags = dict(model_dir=model_dir, **TINY_GAN, shared_iters=2, max_search_iters=2,
                 grow_steps="1", num_cells=2, ctrl_steps=1, ctrl_sample_batch=2,
                 num_candidates=3, topk=2, reward_num_images=20, eval_batch_size=10,
                 reset_window=3, save_every=1, log_every=1, hid_size=8, classifier=clf)
    flags.update(overrides)
    return flag_args(**flags)


def train_flags(model_dir, clf, **overrides):
    flags = dict(model_dir=model_dir, arch=ARCH2, **TINY_GAN, max_iters=4, log_every=1,
                 save_every=2, eval_every=4, eval_num_samples=20, eval_batch_size=10,
                 classifier=clf)
    flags.update(overrides)
    return flag_args(**flags)


# ---------------------------------------------------------------------------
# Bad input through the command lines: non-zero exit, a message naming the flag or
# file, no traceback, and no work done (no checkpoint, no classifier trained).
# ---------------------------------------------------------------------------

def _prepare_other_search(d, files):
    search.check_config(d, config_lib.SearchConfig(dataset="shapes", gf_dim=8, df_dim=4,
                                               latent_dim=4, num_cells=2, grow_steps="1",
                                               max_search_iters=2, shared_iters=2,
                                               num_candidates=3, topk=2, hid_size=8,
                                               reset_window=3, n_critic=1))


def _prepare_other_train(d, files):
    training.check_model_dir_config(d, config_lib.TrainConfig(
        arch="1 0 1 1 1 1 0 1 1", dataset="shapes", gf_dim=4, df_dim=4, latent_dim=4))


def _prepare_damaged_checkpoints(d, files):
    os.makedirs(os.path.join(d, "checkpoints"))
    for n in (2, 4):
        prefix = os.path.join(d, "checkpoints", f"ckpt-{n}")
        with open(prefix + ".index", "wb") as f:
            f.write(b"\x00garbage index")
        with open(prefix + ".data-00000-of-00001", "wb") as f:
            f.write(b"\x00garbage data")


# name: (command, flag overrides given `files`, preparation of model_dir, message parts)
COMMAND_CASES = {
    "search negative batch": ("search", lambda f: {"d_batch_size": -4}, None,
                              ["--d_batch_size must be a positive integer, got -4"]),
    "search too few reward images": ("search", lambda f: {"reward_num_images": 5}, None,
                                     ["--reward_num_images=5 must be at least 10"]),
    "search other configuration": ("search", lambda f: {}, _prepare_other_search,
                                   ["--model_dir=", "different configuration",
                                    "gf_dim: saved 8 vs flag 4"]),
    "search unsafe classifier": ("search", lambda f: {"classifier": f["lambda"]}, None,
                                 ["--classifier=", "lambda.keras", "safe_mode"]),
    "train model_dir under a file": ("train", lambda f: {"model_dir": "{file}/run"}, None,
                                     ["--model_dir=", "cannot be created"]),
    "train disk too full": ("train", lambda f: {"min_free_mb": 1e12, "classifier": "auto"},
                            None, ["--model_dir=", "MB free"]),
    "train other configuration": ("train", lambda f: {}, _prepare_other_train,
                                  ["different configuration", "arch: saved '1 0 1 1 1 1 0 1 1'"]),
    "train fid stats of another classifier": (
        "train", lambda f: {"fid_stats": f["wrong_dim"]}, None,
        ["--fid_stats=", "wrong_dim.npz", "7-d features", "16-d"]),
    "train images that are not images": (
        "train", lambda f: {"dataset": f"folder:{f['folder']}"}, None,
        ["not_an_image.jpg", "--on_bad_image=skip"]),
    "train only damaged checkpoints": ("train", lambda f: {}, _prepare_damaged_checkpoints,
                                       ["no checkpoint in", "ckpt-4", "ckpt-2",
                                        "can be restored"]),
}


@pytest.fixture(scope="module")
def command_results(files):
    """Every case of COMMAND_CASES run once, three subprocesses at a time."""
    blocker = files["base"] / "a_file"
    blocker.write_text("not a directory")

    def one(name):
        command, overrides, prepare, _ = COMMAND_CASES[name]
        model_dir = str(files["base"] / "cmd" / name.replace(" ", "_"))
        os.makedirs(model_dir, exist_ok=True)
        if prepare:
            prepare(model_dir, files)
        extra = {k: (v.format(file=blocker) if isinstance(v, str) else v)
                 for k, v in overrides(files).items()}
        model_dir = extra.pop("model_dir", model_dir)
        before = checkpoint_files(model_dir)
        make = search_flags if command == "search" else train_flags
        out = run_cli(command, *make(model_dir, files["clf"], **extra))
        return name, model_dir, before, out

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        return {name: rest for name, *rest in pool.map(one, sorted(COMMAND_CASES))}


def checkpoint_files(model_dir):
    directory = os.path.join(model_dir, "checkpoints")
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


@pytest.mark.parametrize("name", sorted(COMMAND_CASES))
def test_bad_input_through_the_command_line(command_results, name):
    model_dir, before, out = command_results[name]
    assert out.returncode != 0, out.stdout[-2000:]
    for part in COMMAND_CASES[name][3]:
        assert part in out.stderr, (part, out.stderr[-3000:])
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    # Refused before any work: nothing trained, no new checkpoint, no classifier.
    if os.path.isdir(model_dir):
        assert checkpoint_files(model_dir) == before
        assert not os.path.exists(os.path.join(model_dir, "classifier.keras"))
        records = faults.read_jsonl(os.path.join(model_dir, "metrics.jsonl")) + \
            faults.read_jsonl(os.path.join(model_dir, "search_log.jsonl"))
        assert not [r for r in records if "d_loss" in r]


def test_limits_of_the_new_flags():
    with pytest.raises(ValueError, match="--max_nan_restores must be >= 0"):
        tiny_search_config(max_nan_restores=-1)
    with pytest.raises(ValueError, match="--reward_num_images=9 must be at least 10"):
        tiny_search_config(reward_num_images=9).check_reward()
    tiny_search_config(reward_num_images=10).check_reward()
    with pytest.raises(ValueError, match="--max_nan_restores must be >= 0"):
        config_lib.TrainConfig(max_nan_restores=-1)
    with pytest.raises(ValueError, match="--eval_num_samples=9 must be at least 10"):
        config_lib.TrainConfig(eval_num_samples=9)
    config_lib.TrainConfig(eval_num_samples=0)  # 0: no evaluation


# ---------------------------------------------------------------------------
# Untrusted model files
# ---------------------------------------------------------------------------

def test_keras_classifiers_load_in_safe_mode(files):
    import keras

    with pytest.raises(classifiers.ClassifierError, match="safe_mode"):
        classifiers.load_keras_classifier(files["lambda"])
    # The refusal is safe mode's doing: the same file loads when code execution is allowed.
    model = keras.models.load_model(files["lambda"], safe_mode=False, compile=False)
    assert model.get_layer("code") is not None
    # Every load_model call in the package passes safe_mode=True.
    calls = []
    for folder, _, names in os.walk(os.path.join(ROOT, "autogan_tf")):
        for name in names:
            if name.endswith(".py"):
                tree = ast.parse(open(os.path.join(folder, name), encoding="utf-8").read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == \
                            "load_model":
                        safe = [k for k in node.keywords if k.arg == "safe_mode"]
                        calls.append((name, node.lineno, bool(safe) and isinstance(
                            safe[0].value, ast.Constant) and safe[0].value.value is True))
    assert calls and all(ok for _, _, ok in calls), calls


# ---------------------------------------------------------------------------
# Checkpoint writes that fail (disk full) leave the older checkpoints usable
# ---------------------------------------------------------------------------

def test_failed_checkpoint_write_names_the_directory_and_keeps_the_previous(tmp_path,
                                                                           monkeypatch):
    var = tf.Variable(1.0)
    ckpt = tf.train.Checkpoint(v=var)
    manager = tf.train.CheckpointManager(ckpt, str(tmp_path / "ckpts"), max_to_keep=3)
    first = checkpointing.save_checkpoint(manager)
    var.assign(2.0)
    original = tf.train.Checkpoint._write  # what CheckpointManager.save calls

    def half_written(self, prefix, options=None):  # half the data lands, then the disk is full
        path = original(self, prefix, options=tf.train.CheckpointOptions())  # no state update
        faults.truncate_checkpoint(path)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tf.train.Checkpoint, "_write", half_written)
    with pytest.raises(rundir.ModelDirError) as info:
        checkpointing.save_checkpoint(manager)
    text = str(info.value)
    assert str(tmp_path / "ckpts") in text and "No space left" in text and first in text
    monkeypatch.undo()
    var.assign(-1.0)
    # The torn one is there (only the number changes: the tmp path may hold "-1" too).
    assert first.endswith("ckpt-1") and os.path.exists(first[:-1] + "2.index")
    fresh = tf.train.CheckpointManager(ckpt, str(tmp_path / "ckpts"), max_to_keep=3)
    assert checkpointing.restore_latest(fresh, ckpt) == first and float(var) == 1.0


# ---------------------------------------------------------------------------
# Divergence: NaN in the generator is caught in the step it happens, the last good
# checkpoint is restored, and repeated divergence stops with a clear error.
# ---------------------------------------------------------------------------

def poison_generator_at(monkeypatch, iterations):
    """Write NaN into a generator weight just before the given (1-based) train_iteration calls."""
    original = gan_trainer.GANTrainer.train_iteration
    calls = {"n": 0}

    def poisoned(self, reals, archs=None, stage=None, labels=None):
        calls["n"] += 1
        if calls["n"] in iterations:
            faults.poison(self.generator.trainable_variables[0])
        return original(self, reals, archs, stage, labels)

    monkeypatch.setattr(gan_trainer.GANTrainer, "train_iteration", poisoned)
    return calls


def test_training_restores_after_nan_in_the_generator(tmp_path, files, monkeypatch):
    poison_generator_at(monkeypatch, {4})
    model_dir = str(tmp_path / "run")
    config = config_lib.TrainConfig(arch=ARCH2, **TINY_GAN, max_iters=6, log_every=1,
                                  save_every=2, eval_every=0, max_nan_restores=1)
    result = training.train(config, model_dir, progress=False)
    assert result["step"] == 6 and not result["preempted"]
    records = faults.read_jsonl(os.path.join(model_dir, "metrics.jsonl"))
    events = [r for r in records if "event" in r and r["event"] != "wall_time"]
    # Poisoned before the 4th iteration: detected in step 4 itself, back to step 2.
    assert [(e["event"], e["step"]) for e in events] == [("nonfinite", 4),
                                                          ("restored_after_nonfinite", 2)]
    assert events[1]["checkpoint"].endswith("ckpt-2")
    assert [r["step"] for r in records if "d_loss" in r] == [1, 2, 3, 3, 4, 5, 6]
    g, _, path = training.restore_generator(model_dir, ema=False)
    assert path.endswith("ckpt-6")
    assert all(np.isfinite(w).all() for w in g.get_weights())


def test_training_stops_after_max_nan_restores(tmp_path, monkeypatch):
    poison_generator_at(monkeypatch, set(range(3, 100)))
    model_dir = str(tmp_path / "run")
    config = config_lib.TrainConfig(arch="1 0 1 1", **TINY_GAN, max_iters=10, save_every=2,
                                  eval_every=0, max_nan_restores=2)
    with pytest.raises(errors.RunError, match=r"NaN/Inf at step 3; this is non-finite value "
                                              r"number 3, more than --max_nan_restores=2"):
        training.train(config, model_dir, progress=False)
    events = [r["event"] for r in faults.read_jsonl(os.path.join(model_dir, "metrics.jsonl"))
              if "event" in r]
    assert events == ["nonfinite", "restored_after_nonfinite"] * 2 + ["nonfinite"]


def tiny_search_config(**overrides):
    base = dict(TINY_GAN, shared_iters=3, max_search_iters=2, num_cells=1, mlas=False,
                grow_steps="", ctrl_steps=1, ctrl_sample_batch=2, num_candidates=2, topk=2,
                reward_num_images=8, eval_batch_size=8, reset_window=4, reset_threshold=1e-9,
                save_every=1, log_every=1, hid_size=8, classifier="unused")
    base.update(overrides)
    return config_lib.SearchConfig(**base)


def test_search_restores_after_nan_then_stops_after_max(tmp_path, monkeypatch):
    # Generator iterations (calls) 1-3 are iteration 0, saved after each step (ckpt-1..3),
    # after the shared phase (ckpt-4) and after the controller phase (ckpt-5); call 4 is
    # iteration 1, step 1 (ckpt-6). Calls 5 and 7 get a NaN weight.
    calls = poison_generator_at(monkeypatch, {5, 7})
    model_dir = str(tmp_path / "s")
    config = tiny_search_config(max_nan_restores=1)
    with pytest.raises(errors.RunError, match=r"non-finite value number 2, more than "
                                                 r"--max_nan_restores=1"):
        search.run_search(config, model_dir, reward_fn=brightness_reward, progress=False)
    assert calls["n"] == 7
    log = faults.read_jsonl(os.path.join(model_dir, "search_log.jsonl"))
    tail = [r for r in log if r.get("iteration") == 1 and ("event" in r or "shared_step" in r)]
    summary = [(r.get("event", "step"), r.get("phase_step", r.get("shared_step")))
               for r in tail]
    # Detected in the step it happened (step 2 never completed), rolled back to the
    # checkpoint after step 1, step 2 retried with the next batch, then the second NaN stops.
    assert summary == [("step", 1), ("nonfinite", 1), ("restored_after_nonfinite", 1),
                       ("step", 2), ("nonfinite", 2)]
    assert "NaN/Inf" in tail[1]["reason"] and tail[2]["checkpoint"].endswith("ckpt-6")
    # The last good checkpoint is intact and finite.
    s = search.Search(config, model_dir, brightness_reward)
    assert s.resume() is not None
    assert all(np.isfinite(w).all() for w in s.generator.get_weights())


# ---------------------------------------------------------------------------
# The data order is part of the checkpoint: a resumed run sees the batches an
# uninterrupted one would (images kept in memory, or streamed from files).
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("streamed", [False, True], ids=["in_memory", "streamed"])
def test_data_position_survives_a_restore(tmp_path, monkeypatch, streamed):
    from autogan_tf import data

    if streamed:
        monkeypatch.setattr(data, "IN_MEMORY_BYTES", 0)
    data.clear_cache()
    folder = tmp_path / "pictures" / "grey"
    folder.mkdir(parents=True)
    for i in range(6):
        tf.io.write_file(str(folder / f"{i}.png"),
                         tf.io.encode_png(tf.fill([8, 8, 3], tf.constant(30 * i, tf.uint8))))
    config = config_lib.TrainConfig(arch="1 0 1 1", dataset=f"folder:{tmp_path / 'pictures'}",
                                  d_batch_size=2, n_critic=1, seed=5)
    batches = training._real_batches(config)
    for _ in range(4):
        next(batches)
    path = tf.train.Checkpoint(data=batches).write(str(tmp_path / "ckpt" / "data"))
    expected = [next(batches).numpy() for _ in range(5)]  # crosses two epochs of 3 batches
    again = training._real_batches(config)
    tf.train.Checkpoint(data=again).read(path).assert_consumed()
    for want in expected:
        np.testing.assert_array_equal(next(again).numpy(), want)
    fresh = training._real_batches(config)
    firsts = [next(fresh).numpy() for _ in range(9)][4:]
    np.testing.assert_array_equal(np.stack(firsts), np.stack(expected))
    data.clear_cache()


@pytest.mark.parametrize("streamed", [False, True], ids=["in_memory", "streamed"])
def test_data_order_is_decided_by_the_seed_alone(tmp_path, monkeypatch, streamed):
    """Not by TensorFlow's global seed, which `keras.utils.set_random_seed` sets (the quick
    start's classifier training did, so its GAN training saw other batches than
    ``autogan-train`` with the same seed)."""
    from autogan_tf import data

    if streamed:
        monkeypatch.setattr(data, "IN_MEMORY_BYTES", 0)
    data.clear_cache()
    folder = tmp_path / "pictures" / "grey"
    folder.mkdir(parents=True)
    for i in range(6):  # image i is the grey level 30 i: the batches show the order
        tf.io.write_file(str(folder / f"{i}.png"),
                         tf.io.encode_png(tf.fill([8, 8, 3], tf.constant(30 * i, tf.uint8))))

    def order(seed, epochs=4):
        config = config_lib.TrainConfig(arch="1 0 1 1", dataset=f"folder:{tmp_path / 'pictures'}",
                                      d_batch_size=3, n_critic=1, seed=seed)
        batches = training._real_batches(config)
        levels = [np.round((next(batches).numpy()[0, :, 0, 0, 0] + 1) * 127.5 / 30)
                  for _ in range(2 * epochs)]
        return np.concatenate(levels).astype(int).reshape(epochs, 6)

    try:
        plain = order(5)
        tf.random.set_seed(123)
        seeded = order(5)
    finally:
        tf.random.set_seed(None)
        data.clear_cache()
    np.testing.assert_array_equal(plain, seeded)
    for epoch in plain:  # every image once per epoch, in a new order each epoch
        assert sorted(epoch) == list(range(6))
    assert len({tuple(e) for e in plain}) > 1
    assert not np.array_equal(plain, order(6))


def test_resume_keeps_the_state_when_the_saved_data_position_does_not_fit(tmp_path, caplog):
    """A checkpoint whose data iterator another input pipeline saved (an older version's):
    the models and counters are restored, the data starts again with new iterators, and
    later checkpoints save those; without ``fresh_data``, or when no checkpoint can be read
    at all, it stays an error."""
    from autogan_tf import checkpointing

    step = tf.Variable(0)
    old = iter(tf.data.Dataset.range(10).shuffle(10, seed=1).repeat())
    saved = checkpointing.RunCheckpoints({"step": step}, {"data": old}, str(tmp_path), 3)
    next(old)
    step.assign(7)
    path = saved.save(7)

    def pipeline():
        return iter(tf.data.Dataset.range(10).map(lambda i: i * 2).repeat())

    strict = checkpointing.RunCheckpoints({"step": tf.Variable(0)}, {"data": pipeline()},
                                          str(tmp_path), 3)
    with pytest.raises(checkpointing.CheckpointError, match="ckpt-7"):
        strict.restore()
    step.assign(0)
    made = []
    resumed = checkpointing.RunCheckpoints(
        {"step": step}, {"data": pipeline()}, str(tmp_path), 3,
        fresh_data=lambda: {"data": made.append(pipeline()) or made[-1]})
    with caplog.at_level("WARNING"):
        assert resumed.restore() == path
    assert int(step) == 7 and len(made) == 1 and int(next(made[0])) == 0
    assert any("without the position of its data iterators" in r.getMessage()
               for r in caplog.records)
    next(made[0])
    again = pipeline()  # the new iterator's position is what the next checkpoint holds
    tf.train.Checkpoint(data=again).read(resumed.save(8)).expect_partial()
    assert int(next(again)) == 4
    for name in os.listdir(tmp_path / "checkpoints"):
        if ".data-" in name:
            with open(tmp_path / "checkpoints" / name, "r+b") as f:
                f.truncate(1)
    with pytest.raises(checkpointing.CheckpointError, match="ckpt-8"):
        resumed.restore()


# ---------------------------------------------------------------------------
# Preemption: SIGTERM checkpoints at the next safe point and returns cleanly
# ---------------------------------------------------------------------------

def test_training_sigterm_checkpoints_and_resumes_in_process(tmp_path, monkeypatch):
    original = gan_trainer.GANTrainer.train_iteration
    calls = {"n": 0}

    def signalled(self, reals, archs=None, stage=None, labels=None):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, reals, archs, stage, labels)

    monkeypatch.setattr(gan_trainer.GANTrainer, "train_iteration", signalled)
    config = config_lib.TrainConfig(arch="1 0 1 1", **TINY_GAN, max_iters=5, save_every=100,
                                  eval_every=0)
    model_dir = str(tmp_path / "run")
    previous = signal.getsignal(signal.SIGTERM)
    result = training.train(config, model_dir, progress=False)
    assert result["preempted"] and result["step"] == 3
    assert signal.getsignal(signal.SIGTERM) == previous  # handlers restored
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith("-3")
    result = training.train(config, model_dir, progress=False)
    assert result["step"] == 5 and not result["preempted"]
    events = [r for r in faults.read_jsonl(os.path.join(model_dir, "metrics.jsonl"))
              if r.get("event") not in (None, "wall_time")]
    assert [(e["event"], e["step"]) for e in events] == [("preempted", 3), ("resumed", 3)]


def test_second_sigint_interrupts_at_once():
    with lifecycle.Preemption() as preemption:
        os.kill(os.getpid(), signal.SIGINT)
        assert preemption.requested and preemption.signal == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    # Outside a main thread nothing is installed (and nothing breaks).
    seen = {}

    def worker():
        with lifecycle.Preemption() as p:
            seen["requested"] = p.requested

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == {"requested": False}


# ---------------------------------------------------------------------------
# Serving: what tests/test_serving.py does not already send
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from autogan_tf.serving import export
    from autogan_tf.testing import TinyGenerator
    from autogan_tf.testing.predict_server import PredictServer

    base = str(tmp_path_factory.mktemp("serve") / "autogan")
    export.export_generator(TinyGenerator(latent_dim=8), base, 1, max_batch=4,
                            warmup_requests=0)
    with PredictServer(base, model_name="autogan") as server:
        yield server


def _grpc_predict(server, signature, inputs):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "autogan"
        request.model_spec.signature_name = signature
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        try:
            stub.Predict(request, timeout=30)
        except grpc.RpcError as err:
            return err.code().name, err.details()
    return "OK", ""


RAW_GRPC_CASES = {
    "num_samples int64": ("generate", {"num_samples": np.int64(2), "seed": np.int64(0)},
                          "must be int32"),
    "num_samples float": ("generate", {"num_samples": np.float32(2), "seed": np.int64(0)},
                          "must be int32"),
    "num_samples vector": ("generate", {"num_samples": np.array([1, 2], np.int32),
                                        "seed": np.int64(0)}, "shape"),
    "z rank 3": ("serving_default", {"z": np.zeros((1, 8, 1), np.float32)}, "shape"),
    "z rank 1": ("serving_default", {"z": np.zeros((8,), np.float32)}, "shape"),
    "z NaN": ("serving_default", {"z": np.full((2, 8), np.nan, np.float32)}, "finite"),
}


@pytest.mark.parametrize("case", sorted(RAW_GRPC_CASES))
def test_raw_grpc_abuse_is_invalid_argument(served, case):
    signature, inputs, message = RAW_GRPC_CASES[case]
    code, details = _grpc_predict(served, signature, inputs)
    assert code == "INVALID_ARGUMENT" and message in details, (code, details)
    assert _grpc_predict(served, "generate", {"num_samples": np.int32(1),
                                              "seed": np.int64(0)}) == ("OK", "")


def test_server_keeps_serving_under_a_flood_of_bad_requests(served):
    from autogan_tf.serving import client as serving

    client = serving.PredictClient(served.rest_address, "rest")
    good = client.generate(2, seed=9)

    requests = [lambda i: client.generate(-1, i), lambda i: client.generate(5, i),
                lambda i: client.predict_z(np.full((1, 8), np.inf))]

    def bad(i):
        try:
            requests[i % 3](i)
        except serving.ServingError as err:
            return err.code
        return "OK"

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(bad, range(48)))
    assert codes == ["INVALID_ARGUMENT"] * 48
    np.testing.assert_array_equal(client.generate(2, seed=9), good)
    assert served.status_json()["model_version_status"][0]["state"] == "AVAILABLE"


def test_a_lost_peer_is_named_from_the_collectives_error(monkeypatch):
    """The survivor's line names the other task and what happened to it."""
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1", "b:2"]}, '
                                    '"task": {"type": "worker", "index": 0}}')
    heartbeat = tf.errors.UnavailableError(None, None, (
        "Graph execution error:\n\n{{function_node x}} Collective ops is aborted by: Error "
        "reported from /job:worker/task:0: The following tasks are unhealthy (stopped sending "
        "heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have crashed."))
    assert lifecycle._lost_worker(heartbeat) == "worker 1"
    assert lifecycle._peer_failure(heartbeat) == "it stopped sending heartbeats"
    timeout = tf.errors.DeadlineExceededError(None, None, "Collective ops timed out")
    assert lifecycle._lost_worker(timeout) == "a worker"
    assert lifecycle._peer_failure(timeout) == "no answer within --collective_timeout"
