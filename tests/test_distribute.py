"""Host configuration and strategies (autogan_tf.distribute)."""

import subprocess
import sys
import textwrap

import pytest


def _run_fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter (thread pools can only be set before TF starts)."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=120, env={"TF_CPP_MIN_LOG_LEVEL": "3",
                                                      **__import__("os").environ})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_automatic_inter_op_threads_is_one_op_at_a_time_without_gpus():
    got = _run_fresh("""
        import tensorflow as tf
        from autogan_tf import distribute
        distribute.configure_threads(-1)
        gpus = bool(tf.config.list_physical_devices("GPU"))
        print(tf.config.threading.get_inter_op_parallelism_threads(), gpus)
    """)
    threads, gpus = got.split()
    assert threads == ("0" if gpus == "True" else "1")


def test_explicit_threads_after_tensorflow_started_is_an_error_naming_the_flag():
    got = _run_fresh("""
        import tensorflow as tf
        from autogan_tf import distribute
        tf.constant(1.0) + 1.0  # starts the runtime
        distribute.configure_threads(-1)  # automatic: silently keeps what is there
        try:
            distribute.configure_threads(3, 2)
        except distribute.DistributeError as e:
            print("error", "--inter_op_threads" in str(e))
    """)
    assert got == "error True"


def test_explicit_threads_are_applied():
    got = _run_fresh("""
        import tensorflow as tf
        from autogan_tf import distribute
        distribute.configure_threads(2, 1)
        print(tf.config.threading.get_inter_op_parallelism_threads(),
              tf.config.threading.get_intra_op_parallelism_threads())
    """)
    assert got == "2 1"
