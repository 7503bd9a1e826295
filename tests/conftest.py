"""What several test modules share: running a command line, tiny settings, small models.

Fixtures here are found by pytest by name; the plain helpers are imported
(``from conftest import run_cli``): pytest puts this folder on ``sys.path``.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The smallest GAN the tests train: 4 channels, batches of 4, one D step per G step, on
# the built-in `shapes` data. Tests add the sizes of their run (iterations, cells, ...).
TINY_GAN = dict(dataset="shapes", gf_dim=4, df_dim=4, latent_dim=4, g_batch_size=4,
                d_batch_size=4, n_critic=1)


# -- command lines -------------------------------------------------------------------------
def cli_env(**overrides) -> dict:
    """The environment of a command a test runs: this one, with TensorFlow's native log
    lines and GPU probing off (``TF_CPP_MIN_LOG_LEVEL=3``, no visible CUDA device).

    Args:
      **overrides: variables to set; a value of None removes the variable.

    Returns:
      A new dict for ``subprocess``' ``env``.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_cli(command, *args, timeout=300, env=None, check=False):
    """Run a command line as a user does, in its own Python process, from the checkout.

    Args:
      command: ``train``, ``fid_stats``... (a module of ``autogan_tf.cli``), a dotted
        module path run as ``python -m``, or ``"-c"`` to run the snippet ``args[0]``.
      *args: its flags and arguments.
      timeout: seconds before the run is killed (the test then fails).
      env: the environment (default `cli_env()`).
      check: assert that it exited with status 0, showing the end of its stderr if not.

    Returns:
      The ``subprocess.CompletedProcess``, with ``stdout`` and ``stderr`` as text.
    """
    if command == "-c":  # a Python snippet (args[0]) instead of a module
        argv = [sys.executable, "-c", *args]
    else:
        module = command if "." in command else f"autogan_tf.cli.{command}"
        argv = [sys.executable, "-m", module, *args]
    out = subprocess.run(argv, cwd=ROOT,
                         env=cli_env() if env is None else env, capture_output=True, text=True,
                         timeout=timeout)
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def run_fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter and return the last line it printed.

    For what must happen before TensorFlow starts (thread pools, logical CPU devices). The
    timeout only guards against a hang: a slower or busy machine takes several minutes.
    """
    import textwrap

    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=600, cwd=ROOT,
                         env={"TF_CPP_MIN_LOG_LEVEL": "3", **os.environ})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def flag_args(**flags) -> list:
    """``["--name=value", ...]`` for keyword arguments, in their order."""
    return [f"--{name}={value}" for name, value in flags.items()]


def last_json(text: str):
    """The JSON value on the last line of a command's output (where each command puts its result)."""
    return json.loads(text.strip().splitlines()[-1])


def read_jsonl(path) -> list:
    """Every record of a JSON-lines log (``metrics.jsonl``, ``search_log.jsonl``)."""
    with open(path) as f:
        return [json.loads(line) for line in f]


# -- search ------------------------------------------------------------------------------
def brightness_reward(search_obj, arch, stage, seed):
    """A cheap deterministic stand-in for the Inception Score: mean brightness of 8 images."""
    import tensorflow as tf

    images = search_obj.images(arch, 8, stage, seed)
    return float(tf.reduce_mean(tf.cast(images, tf.float32))) / 255.0


# -- small models --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory):
    """An untrained 32x32, 8-class Keras classifier (width 4): enough for the plumbing of
    IS/FID, in training runs and commands alike. Path of its ``.keras`` file."""
    from autogan_tf.metrics import classifiers

    path = str(tmp_path_factory.mktemp("clf") / "tiny32.keras")
    classifiers.build_classifier(num_classes=8, image_size=32, width=4).save(path)
    return path


@pytest.fixture(scope="module")
def generator():
    """A tiny exportable generator (``testing.TinyGenerator``, latent_dim 8)."""
    from autogan_tf.testing import TinyGenerator

    return TinyGenerator(latent_dim=8)


def reference_uint8(generator, z):
    """What an exported generator must return for ``z``: the official conversion done in
    NumPy (x*127.5+127.5, clamped to [0, 255], truncated)."""
    import numpy as np
    import tensorflow as tf

    x = np.asarray(generator(tf.constant(z, tf.float32), training=False))
    return np.clip(x * 127.5 + 127.5, 0, 255).astype(np.uint8)


def assert_close_uint8(a, b):
    """Two uint8 image batches of one shape, no pixel more than 1 apart: float32 rounding
    in another graph may move a value across an integer."""
    import numpy as np

    assert a.dtype == np.uint8 and b.dtype == np.uint8 and a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


# -- references written from papers ---------------------------------------------------------
def paper_mmd2(x, y):
    """Bińkowski et al. 2018's unbiased MMD^2 estimate written out pair by pair, with
    k(a, b) = (a . b / d + 1)^3."""
    d = x.shape[1]

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    m, n = len(x), len(y)
    within_x = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    within_y = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    across = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return within_x + within_y - 2 * across
