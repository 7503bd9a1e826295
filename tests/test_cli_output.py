"""What a user sees in the terminal: our lines, not TensorFlow's chatter (unless --verbosity)."""

import os
import re
import subprocess
import sys

import pytest

from autogan_tf import flagfiles
from autogan_tf.cli import common, output

from conftest import ROOT, TINY_GAN, cli_env, flag_args, run_cli

NATIVE = re.compile(r"^[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\]", re.M)


def _env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "AUTOGAN_VERBOSE_NATIVE_LOGS")}
    return dict(env, PYTHONPATH=ROOT)


def test_native_lines_are_classified():
    assert not output.keep_native_line(
        b"I0000 00:00:1796184958.007743    7447 port.cc:153] oneDNN custom operations are on.")
    assert not output.keep_native_line(
        b"E0000 00:00:1796184962.077028    7447 cuda_platform.cc:52] failed call to cuInit: x")
    assert not output.keep_native_line(
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")
    assert output.keep_native_line(
        b"E0000 00:00:1796184962.077028    7447 kernel.cc:1] real failure: out of memory")
    assert output.keep_native_line(b"[#####...............] 50/300  16.7% 3.2 it/s ETA 46s")
    assert output.keep_native_line(b"Traceback (most recent call last):")


def test_filter_drops_chatter_and_keeps_our_output_and_partial_lines():
    script = (
        "import os, sys\n"
        "import autogan_tf.cli\n"
        "os.write(2, b'I0000 00:00:1.5    12 port.cc:153] chatter\\n')\n"
        "sys.stderr.write('progress 1/2\\r'); sys.stderr.flush()\n"
        "os.write(2, b'W0000 00:00:1.5    12 x.cc:9] more chatter\\n')\n"
        "print('autogan: ours', file=sys.stderr)\n"
        "sys.exit('autogan-x: error: the last words')\n")
    out = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True,
                         timeout=300)
    err = out.stderr.decode()
    assert out.returncode == 1
    assert "chatter" not in err
    assert "progress 1/2\r" in err and "autogan: ours" in err
    assert err.rstrip().endswith("autogan-x: error: the last words")


@pytest.fixture(scope="module")
def tiny_run_output(tmp_path_factory):
    """A two-iteration training with a checkpoint, at default and at explicit verbosity."""
    runs = {}
    for name, extra in (("default", []), ("verbose", ["--verbosity=0"])):
        model_dir = tmp_path_factory.mktemp(name)
        runs[name] = run_cli("train", f"--model_dir={model_dir}", "--arch=1 1 1 1",
                             *flag_args(**TINY_GAN, bottom_width=4, max_iters=2, save_every=1,
                                        eval_every=0), *extra, timeout=600, env=_env())
    return runs


def test_default_output_holds_no_tensorflow_info_lines(tiny_run_output):
    out = tiny_run_output["default"]
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    assert not NATIVE.findall(text), NATIVE.findall(text)[:3]
    assert "Sharding callback" not in text and "cuInit" not in text
    assert "[####################] 2/2" in out.stderr  # our progress is there


def test_verbosity_flag_shows_tensorflow_logs(tiny_run_output):
    out = tiny_run_output["verbose"]
    assert out.returncode == 0, out.stderr[-2000:]
    assert NATIVE.findall(out.stderr)  # the filter, not luck, hides them by default


def test_shipped_flagfiles_resolve_by_name(tmp_path, monkeypatch):
    shipped = flagfiles.shipped()
    assert {"search_cifar10", "search_quick", "train_cifar10_a", "train_quick",
            "train_stl10"} <= set(shipped)
    monkeypatch.chdir(tmp_path)  # no flags/ folder here, as after a plain install
    for value in ("search_quick", "search_quick.cfg", "flags/search_quick.cfg"):
        (arg,) = common.resolve_flagfiles([f"--flagfile={value}"])
        path = arg.split("=", 1)[1]
        assert os.path.isfile(path) and "--dataset=shapes" in open(path).read()
    local = tmp_path / "mine.cfg"
    local.write_text("--max_iters=3\n")
    assert common.resolve_flagfiles([f"--flagfile={local}"]) == [f"--flagfile={local}"]
    with pytest.raises(SystemExit, match="--flagfile=nope.cfg: no such file.*search_cifar10"):
        common.resolve_flagfiles(["autogan-train", "--flagfile=nope.cfg"])


def test_settings_parse_like_flagfile_lines_and_refuse_bad_ones():
    from autogan_tf import errors
    from autogan_tf.config import SearchConfig

    parsed = flagfiles.parse_settings(
        ["reward_bn=batch", "shared_iters=80", "g_lr=1e-3", "mlas=true", "nomlas",
         "--shared_iters=90"], SearchConfig, "--search_setting")
    # Typed as the fields; a later item for the same key wins.
    assert parsed == {"reward_bn": "batch", "shared_iters": 90, "g_lr": 0.001, "mlas": False}
    assert type(parsed["shared_iters"]) is int and type(parsed["g_lr"]) is float
    assert flagfiles.parse_settings(["nomlas", "mlas"], SearchConfig, "-") == {"mlas": True}
    for item, message in (("shared_iters", "expected KEY=VALUE, not a bare shared_iters"),
                          ("lr=1", "--lr is not a field of SearchConfig"),
                          ("shared_iters=8.5", "--shared_iters expects int, got '8.5'"),
                          ("mlas=maybe", "--mlas expects bool, got 'maybe'"),
                          ("seed=3", "seed is set by the command itself")):
        with pytest.raises(errors.UserError) as e:
            flagfiles.parse_settings([item], SearchConfig, "--search_setting",
                                     reserved=("seed",))
        assert str(e.value).startswith(f"--search_setting={item}: ") and message in str(e.value)


def test_search_events_read_as_sentences():
    from autogan_tf.search.log import describe_event

    line = describe_event({"iteration": 2, "event": "stage_top_k", "stage": 0,
                           "rewards": [1.5, 1.25], "archs": ["1 2 0 1", "0 1 2 1"]})
    assert line == "iteration 2: stage 0 top 2: 1 2 0 1 (1.50), 0 1 2 1 (1.25)"
    record = {"iteration": 6, "event": "stage_top_k", "stage": 2, "rewards": [2.25],
              "archs": ["1 1 1 1 1 1 0 1 0 0 0 0 0 0"]}
    assert describe_event(record, staged=False) == (  # single-level: one stage, not named
        "iteration 6: top 1: 1 1 1 1 1 1 0 1 0 0 0 0 0 0 (2.25)")
    assert describe_event({"iteration": 6, "event": "finished", "best_arch": "1 0 1 1",
                           "best_reward": 3.14159}) == (
        "search finished: best architecture 1 0 1 1 (reward 3.14)")
    assert describe_event({"iteration": 3, "event": "dynamic_reset", "stage": 1,
                           "time": 1.0}) == "iteration 3: dynamic_reset (stage=1)"


def test_the_built_package_ships_the_flagfiles_and_no_top_level_bin(tmp_path):
    import zipfile

    out = subprocess.run([sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-q",
                          "-w", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = [p for p in os.listdir(tmp_path) if p.endswith(".whl")]
    names = zipfile.ZipFile(tmp_path / wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"autogan_tf", wheel.split("-")[0] + "-" + wheel.split("-")[1] + ".dist-info"}
    assert {"autogan_tf/flags/search_cifar10.cfg", "autogan_tf/flags/train_quick.cfg",
            "autogan_tf/cli/quickstart.py"} <= set(names)


def test_a_damaged_jpeg_makes_one_warning_line_and_nothing_else(tmp_path):
    """libjpeg's own "Improper call to JPEG library" and Python's source line under a
    warning stay out of the terminal; the one line says which file was skipped."""
    import io

    from PIL import Image

    (tmp_path / "pics" / "a").mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (12, 12), (40 * i, 100, 50)).save(tmp_path / "pics" / "a" / f"{i}.jpg")
    whole = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(whole, "JPEG", quality=90)
    (tmp_path / "pics" / "a" / "broken.jpg").write_bytes(whole.getvalue()[:300])
    out = run_cli("train", f"--model_dir={tmp_path / 'run'}", "--arch=1 0 1 1",
                  f"--dataset=folder:{tmp_path / 'pics'}", "--gf_dim=4", "--df_dim=4",
                  "--latent_dim=4", "--g_batch_size=4", "--d_batch_size=2", "--n_critic=1",
                  "--max_iters=1", "--eval_every=0", "--on_bad_image=skip",
                  env=cli_env(TF_CPP_MIN_LOG_LEVEL=None), check=True)
    warnings = [line for line in out.stderr.splitlines() if "warning" in line.lower()]
    assert warnings == [f"autogan: warning: --dataset: skipped 1 unreadable image(s): "
                        f"{tmp_path / 'pics' / 'a' / 'broken.jpg'} (first error: jpeg::Uncompress "
                        "failed. Invalid JPEG data or crop window.)"]
    assert "JPEG library" not in out.stderr and "warnings.warn" not in out.stderr


def test_a_folder_of_grey_and_rgba_images_trains_and_says_what_it_read(tmp_path):
    """Before training, one line says how the folder was read; greyscale and RGBA images
    train as RGB (with D's augmentation on, through the command's flag)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    pics = tmp_path / "pics"
    for name in ("cats", "dogs"):
        (pics / name).mkdir(parents=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(
            pics / "cats" / f"{i}.png")
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8)).save(
            pics / "dogs" / f"grey{i}.png")
    Image.fromarray(rng.integers(0, 256, (10, 10, 4), dtype=np.uint8)).save(
        pics / "dogs" / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8)).save(
        pics / "dogs" / "grey.jpg")
    out = run_cli("train", f"--model_dir={tmp_path / 'run'}", "--arch=1 0 1 1",
                  f"--dataset=folder:{pics}", "--gf_dim=4", "--df_dim=4", "--latent_dim=4",
                  "--g_batch_size=4", "--d_batch_size=2", "--n_critic=1", "--max_iters=2",
                  "--eval_every=0", "--augment=translation,color,cutout", check=True)
    summaries = [line for line in out.stderr.splitlines() if "folder:" in line]
    assert summaries == [(
        f"autogan: folder:{pics}: 7 images in 2 classes, 10x10 to 12x10 px, centre-cropped to "
        "squares (3 were not square) and resized to 8x8 px; 3 greyscale and 1 RGBA images "
        "converted to RGB")]
    assert "[####################] 2/2" in out.stderr
