"""A run directory (``--model_dir``): the names of what it holds, and the checks before a run.

Every command that writes a run directory lays it out with these names, so a
reader (``autogan-evaluate``, ``autogan-export``, `api.load_generator`) finds
what a writer (``autogan-train``, ``autogan-import``, ``autogan-search``) put
there. Pure Python: no TensorFlow.

* `locked`: one writer per run directory: an OS lock that dies with its process;
* `check_writable`: creatable, writable, with free space, before any work;
* `check_config`: the configuration saved by an earlier run in the same
  directory describes the same model, or the run is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time

from autogan_tf import errors, runlog

CHECKPOINTS = "checkpoints"          # the latest checkpoints of a run (search or training)
BEST = "best"                        # the best-FID checkpoint of a training run
LOGS = runlog.TB_SUBDIR              # TensorBoard event files
SAMPLES = "samples"                  # sample grids written during a run
WORKERS = ".workers"                 # scratch of the other workers of a multi-worker job
TRAIN_CONFIG = "config.json"         # the settings of a training run
SEARCH_CONFIG = "search_config.json"  # the settings of a search
SEARCH_RESULT = "search_result.json"  # a search's top architectures
DERIVE_RESULT = "derive_result.json"  # autogan-derive's table of trained candidates
TRAIN_LOG = "metrics"                # MODEL_DIR/metrics.jsonl of a training run
SEARCH_LOG = "search_log"            # MODEL_DIR/search_log.jsonl of a search
CLASSIFIER = "classifier.keras"      # the small classifier of --classifier=auto
FID_STATS = "fid_stats.npz"          # reference statistics computed from the data set
LOCK = ".lock"                       # the writer's lock, and who holds it

# sysexits.h EX_CANTCREAT: the run directory is another process's; distinct from a failed
# run (1) and from a preempted one (75, "rerun to resume"), so a scheduler does not requeue.
EX_LOCKED = 73


def fid_stats_file(network: str) -> str:
    """The cached reference statistics of ``network`` when `FID_STATS` holds another's.

    Args:
      network: the feature extractor's name (e.g. ``keras:label_free_rotation.keras``).

    Returns:
      A file name such as ``fid_stats_keras_label_free_rotation.keras.npz``.
    """
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in network)
    return f"fid_stats_{safe}.npz"


class ModelDirError(errors.UserError):
    """The output directory cannot be used (not creatable, not writable, disk full)."""


class RunDirLocked(errors.UserError):
    """Another live process writes this run directory (`locked`)."""

    exit_status = EX_LOCKED


_HELD = {}  # realpath of a locked directory -> [file descriptor, how many holders here]


def _holder_record() -> str:
    command = " ".join([os.path.basename(sys.argv[0] or "python")] + sys.argv[1:])
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                       "command": command[:300], "since": time.strftime("%Y-%m-%d %H:%M:%S")})


def _describe_holder(fd) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return (f"process {holder['pid']} on {holder['host']} (`{holder['command']}`, since "
                f"{holder['since']})")
    except (OSError, ValueError, KeyError):
        return "another process"


@contextlib.contextmanager
def locked(model_dir: str, flag: str = "--model_dir"):
    """Hold ``model_dir`` for this process: a second process that asks for it stops at once.

    The lock is ``fcntl.flock`` on ``model_dir/.lock``: the operating system releases it
    when the process ends however it ends, so a ``kill -9`` leaves nothing to clean up.
    The holder's host, pid and command are written into the file for the message another
    process prints. Re-entrant within a process (the commands, the API and the run driver
    each take it). On systems without ``fcntl`` (Windows) it is a no-op; on a network file
    system it holds only where the file system honours ``flock`` (NFS v4 does).

    Args:
      model_dir: the run directory (created when missing).
      flag: the flag named in the message.

    Raises:
      RunDirLocked: another live process holds ``model_dir`` (exit status `EX_LOCKED`).
      ModelDirError: ``model_dir`` cannot be created, or its lock file cannot be written.
    """
    try:
        import fcntl
    except ImportError:  # no flock: nothing to hold
        yield
        return
    key = os.path.realpath(model_dir)
    if key in _HELD:
        _HELD[key][1] += 1
    else:
        try:
            os.makedirs(model_dir, exist_ok=True)
            fd = os.open(os.path.join(model_dir, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ModelDirError(f"{flag}={model_dir} cannot be created or written: "
                                f"{e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _describe_holder(fd)
            os.close(fd)
            raise RunDirLocked(f"{flag}={model_dir} is in use by {holder}; wait for it to "
                               "finish or use another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_record().encode(), 0)
        _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        _HELD[key][1] -= 1
        if not _HELD[key][1]:
            fd = _HELD.pop(key)[0]
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def check_writable(model_dir: str, min_free_mb: float = 200.0, flag: str = "--model_dir"):
    """Fail early, naming ``flag``, if ``model_dir`` cannot hold this run's output.

    Creates ``model_dir`` when missing and writes and removes a probe file in it, so that a
    bad directory is reported before hours of work rather than at the first checkpoint.

    Args:
      model_dir: the output directory.
      min_free_mb: the smallest free disk space accepted, in MiB.
      flag: the flag named in the error messages.

    Returns:
      ``model_dir``.

    Raises:
      ModelDirError: ``model_dir`` is empty, not a directory, cannot be created or written,
        or has less than ``min_free_mb`` free.
    """
    if not model_dir:
        raise ModelDirError(f"{flag} is required")
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise ModelDirError(f"{flag}={model_dir} is not a directory")
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as e:
        raise ModelDirError(f"{flag}={model_dir} cannot be created: "
                            f"{e.strerror or e}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=model_dir, prefix=".write_probe")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise ModelDirError(f"{flag}={model_dir} is not writable: {e.strerror or e}") from None
    free_mb = shutil.disk_usage(model_dir).free / 2 ** 20
    if free_mb < min_free_mb:
        raise ModelDirError(f"{flag}={model_dir} has only {free_mb:.0f} MB free; at least "
                            f"{min_free_mb:.0f} MB are needed for checkpoints and logs")
    return model_dir


def _load_json_object(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    if not isinstance(saved, dict):
        raise ValueError("not a JSON object")
    return saved


def read_config(model_dir: str, filename: str, what: str) -> dict:
    """The settings a run saved in ``model_dir/filename``.

    Args:
      model_dir: the run directory.
      filename: `TRAIN_CONFIG` or `SEARCH_CONFIG`.
      what: what the directory should hold ("training run", "search"), for the message.

    Raises:
      errors.RunUserError: the file is missing or not a JSON object.
    """
    try:
        return _load_json_object(os.path.join(model_dir, filename))
    except (OSError, ValueError) as e:
        raise errors.RunUserError(f"--model_dir={model_dir}: cannot read {filename} ({e}); is "
                                  f"it a {what} directory?") from None


def check_config(model_dir: str, filename: str, config, structural, what: str,
                 write: bool) -> None:
    """Refuse a run directory whose saved configuration differs in ``structural`` keys.

    Args:
      model_dir: the run directory (``--model_dir``).
      filename: the saved configuration's JSON file in it (`TRAIN_CONFIG`, `SEARCH_CONFIG`).
      config: the configuration of the run about to start or resume (a `config.Settings`).
      structural: the keys that must match (widths, architecture, ...): other
        settings may change between a run and its resumption.
      what: what the directory holds ("run", "search"), for the message.
      write: write ``config`` into the directory once it is accepted (the chief does).

    Raises:
      errors.RunUserError: the file is unreadable or describes another configuration.
    """
    path = os.path.join(model_dir, filename)
    current = config.to_dict()
    if os.path.exists(path):
        try:
            saved = _load_json_object(path)
        except (OSError, ValueError) as e:
            raise errors.RunUserError(f"{path} is unreadable ({e}); use a new --model_dir") \
                from None
        before = {k: config.saved_value(saved, k) for k in structural}
        diff = {k: (before[k], current[k]) for k in structural if before[k] != current[k]}
        if diff:
            pretty = ", ".join(f"{k}: saved {a!r} vs flag {b!r}" for k, (a, b) in diff.items())
            raise errors.RunUserError(f"--model_dir={model_dir} holds a {what} of a different "
                                      f"configuration ({pretty}); use a new --model_dir or "
                                      "the same flags")
    if write:
        runlog.write_json_atomic(path, current)
