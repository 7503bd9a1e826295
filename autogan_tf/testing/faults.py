"""Fault injection for the reliability tests: crashes, torn checkpoints, NaNs, signals.

Run a command line with a fault armed, in its own process::

    python -m autogan_tf.testing.faults --kill_in_save=3 -- autogan_tf.cli.search --model_dir=...
    python -m autogan_tf.testing.faults --tear_save=2 -- autogan_tf.cli.train --model_dir=...

The command's module runs as ``__main__`` (exactly as ``python -m autogan_tf.cli.search``),
with `tf.train.CheckpointManager.save` wrapped:

* ``--kill_in_save=N``: SIGKILL the process at a random moment of its N-th
  checkpoint write. A timer thread fires after a delay drawn uniformly from
  [0, the duration of the previous write] (TensorFlow releases the GIL while
  writing, so the timer interrupts the write itself); if the write ends first,
  the process is killed right after it. ``--fault_seed`` fixes the draw.
* ``--tear_save=N``: let the N-th write finish, cut its data file in half (what
  a machine that crashes before the file reached the disk leaves) and SIGKILL.

A line ``FAULT <kind> save=<n> ...`` is printed to stderr before the kill, so
a test can tell which fault fired. The helpers below (checkpoint damage, NaN
injection, reading a log a kill may have cut) are for tests in this process.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import runpy
import signal
import sys
import threading
import time

# --------------------------------------------------------------------------- in-process helpers

def data_files(prefix: str) -> list[str]:
    return sorted(glob.glob(glob.escape(prefix) + ".data-*"))


def truncate_checkpoint(prefix: str, keep_fraction: float = 0.5) -> str:
    """Cut the data file of checkpoint ``prefix`` to a fraction of its size; returns it."""
    (path,) = data_files(prefix)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * keep_fraction))
    return path


def flip_bytes(prefix: str, count: int = 16, seed: int = 0) -> str:
    """Invert ``count`` bytes in the middle of the data file of checkpoint ``prefix``."""
    (path,) = data_files(prefix)
    rng = random.Random(seed)
    with open(path, "r+b") as f:
        raw = bytearray(f.read())
        for _ in range(count):
            i = rng.randrange(len(raw) // 4, max(len(raw) // 4 + 1, 3 * len(raw) // 4))
            raw[i] ^= 0xFF
        f.seek(0)
        f.write(raw)
    return path


def poison(variable, index=0):
    """Write NaN into one element of a float ``tf.Variable`` (a diverged weight)."""
    import numpy as np

    value = variable.numpy().copy()
    value.reshape(-1)[index] = np.nan
    variable.assign(value)


def read_jsonl(path: str) -> list[dict]:
    """The complete JSON lines of ``path`` (a line cut by a kill is skipped)."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


# --------------------------------------------------------------------------- the launcher

def _kill_now(kind: str, save_number: int, detail: str = ""):
    from autogan_tf.cli import output

    output.write_now(f"FAULT {kind} save={save_number} {detail}\n")  # not via the filter's pipe
    os.kill(os.getpid(), signal.SIGKILL)


def arm(kill_in_save: int = 0, tear_save: int = 0, seed: int = 0):
    """Wrap `tf.train.CheckpointManager.save` in this process with the requested fault."""
    import tensorflow as tf

    original = tf.train.CheckpointManager.save
    rng = random.Random(seed)
    state = {"count": 0, "last_duration": 0.05}

    def save(self, *args, **kwargs):
        state["count"] += 1
        n = state["count"]
        if n == kill_in_save:
            delay = rng.uniform(0.0, state["last_duration"])
            timer = threading.Timer(delay, _kill_now,
                                    ("kill_in_save", n, f"delay={delay:.4f}s during the write"))
            timer.daemon = True
            timer.start()
            original(self, *args, **kwargs)
            _kill_now("kill_in_save", n, f"delay={delay:.4f}s after the write")
        t0 = time.time()
        path = original(self, *args, **kwargs)
        state["last_duration"] = max(time.time() - t0, 1e-3)
        if n == tear_save:
            torn = truncate_checkpoint(path)
            _kill_now("tear_save", n, f"truncated={torn}")
        return path

    tf.train.CheckpointManager.save = save


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: python -m autogan_tf.testing.faults [fault flags] -- "
                         "MODULE [command flags]")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="python -m autogan_tf.testing.faults")
    parser.add_argument("--kill_in_save", type=int, default=0,
                        help="SIGKILL during the N-th checkpoint write (0: never)")
    parser.add_argument("--tear_save", type=int, default=0,
                        help="truncate the N-th checkpoint written, then SIGKILL (0: never)")
    parser.add_argument("--fault_seed", type=int, default=0)
    args = parser.parse_args(argv[:split])
    module, command_args = argv[split + 1], argv[split + 2:]
    arm(args.kill_in_save, args.tear_save, args.fault_seed)
    sys.argv = [module, *command_args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
