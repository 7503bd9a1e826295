"""Checkpoints of a run: where they go, how they are written, how a run comes back.

* `ChiefCheckpoints`: a checkpoint manager for jobs of one or more workers;
  only the chief keeps checkpoints in ``model_dir`` (see `distribute`).
* `save_checkpoint` / `restore_latest`: a failed write becomes an error that
  says what to do; a damaged newest checkpoint is skipped for the one before.
* `RunCheckpoints`: the two views of a run's checkpoint that the search and
  the training both need: everything (to resume), and everything but the data
  iterators (what a NaN/Inf roll-back restores, so the retry sees new batches).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from typing import Optional

import tensorflow as tf
from absl import logging

from autogan_tf import distribute, errors, rundir
from autogan_tf.rundir import ModelDirError


class CheckpointError(errors.UserError, RuntimeError):
    """Checkpoints exist but none of them can be read."""


class ChiefCheckpoints:
    """A `tf.train.CheckpointManager` for a job with one or more workers.

    ``directory``, ``latest_checkpoint`` and ``checkpoints`` are the chief's
    (``model_dir/subdir``), which is also where every worker restores from (a
    restarted worker resumes from the chief's checkpoint; the directory must be
    shared, e.g. NFS or GCS, across hosts). `save` writes there on the chief;
    elsewhere it writes into this worker's scratch directory and deletes it.

    Args:
      checkpoint: the `tf.train.Checkpoint` to save.
      model_dir: the run directory.
      subdir: the checkpoints' folder in it ("checkpoints", "best").
      max_to_keep: how many recent checkpoints the chief keeps (None: all).
    """

    def __init__(self, checkpoint, model_dir: str, subdir: str, max_to_keep: int | None):
        self.checkpoint = checkpoint
        self.chief = distribute.is_chief()
        self._scratch = os.path.join(distribute.worker_dir(model_dir), subdir)
        self.manager = tf.train.CheckpointManager(
            checkpoint, os.path.join(model_dir, subdir), max_to_keep=max_to_keep)

    @property
    def directory(self):
        """The chief's checkpoint folder, ``model_dir/subdir``, on every worker."""
        return self.manager.directory

    @property
    def latest_checkpoint(self):
        """The newest checkpoint in the chief's folder (None before the first save).

        A worker other than the chief reads the folder's state file each time, since its own
        manager never saves there.
        """
        return tf.train.latest_checkpoint(self.manager.directory) if not self.chief \
            else self.manager.latest_checkpoint

    @property
    def checkpoints(self):
        """The checkpoint paths the manager tracks, oldest first."""
        return self.manager.checkpoints

    @property
    def _prefix(self):  # restore_latest globs for checkpoints the manager lost
        return os.path.join(self.manager.directory, "ckpt")

    def save(self, checkpoint_number=None):
        """Save: on the chief into ``directory``; elsewhere into a scratch folder that is deleted.

        Every worker calls this, since saving may need all of them (reading a variable can be
        a collective op); only the chief's copy is kept.

        Args:
          checkpoint_number: the number in the file name (None: the manager's counter).

        Returns:
          The chief's checkpoint path (on other workers, the path the chief writes).
        """
        if self.chief:
            return self.manager.save(checkpoint_number=checkpoint_number)
        scratch = tf.train.CheckpointManager(self.checkpoint, self._scratch, max_to_keep=1)
        path = scratch.save(checkpoint_number=checkpoint_number)
        shutil.rmtree(self._scratch, ignore_errors=True)
        return os.path.join(self.manager.directory, os.path.basename(path))


def _checkpoint_candidates(manager) -> list[str]:
    """Checkpoint prefixes newest first: the manager's list, plus any on disk it lost."""
    paths = {os.path.abspath(p): p for p in manager.checkpoints}
    prefix = getattr(manager, "_prefix", None) or os.path.join(manager.directory, "ckpt")
    for index in glob.glob(glob.escape(prefix) + "-*.index"):
        path = index[:-len(".index")]
        if re.fullmatch(r"\d+", path.rsplit("-", 1)[1]):
            paths.setdefault(os.path.abspath(path), path)

    def number(path):
        tail = path.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else -1

    return sorted(paths.values(), key=number, reverse=True)


def restore_latest(manager, checkpoint, expect_partial: bool = False) -> Optional[str]:
    """Restore the newest readable checkpoint of ``manager`` into ``checkpoint``.

    A newest checkpoint that cannot be read (truncated by a kill, corrupted)
    is skipped with a warning naming it, and the one before is tried.

    Args:
      manager: a `tf.train.CheckpointManager` or `ChiefCheckpoints`.
      checkpoint: the `tf.train.Checkpoint` to restore into; it may hold a
        subset of what was saved when ``expect_partial`` is True.
      expect_partial: do not warn about saved values ``checkpoint`` lacks.

    Returns:
      The restored path, or None when the directory holds no checkpoint.

    Raises:
      CheckpointError: checkpoints exist but none can be read (rather than
        silently starting over).
    """
    candidates = _checkpoint_candidates(manager)
    failures = []
    for path in candidates:
        try:
            status = checkpoint.restore(path)  # eager: reads existing variables now
            if expect_partial:
                status.expect_partial()
        except Exception as e:  # noqa: BLE001 - any read failure means "try the older one"
            reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
            logging.warning("checkpoint %s cannot be restored (%s); trying an older one",
                            path, reason)
            failures.append(f"{path} ({reason})")
            continue
        if failures:
            logging.warning("restored %s after skipping %d unreadable checkpoint(s)",
                            path, len(failures))
        return path
    if failures:
        raise CheckpointError(
            f"no checkpoint in {manager.directory} can be restored: " + "; ".join(failures)
            + ". Move the directory away to start over (or put back a good checkpoint)")
    return None


def save_checkpoint(manager, checkpoint_number=None) -> str:
    """``manager.save(...)``, turning a failed write (disk full, directory gone) into a
    `ModelDirError` that names the directory and the checkpoint a rerun resumes from.

    A failed or killed write never damages older checkpoints: TensorFlow writes
    the new files under temporary names, and the manager's state file is
    replaced atomically afterwards; `restore_latest` skips a half-written one.

    Args:
      manager: a `tf.train.CheckpointManager` or `ChiefCheckpoints`.
      checkpoint_number: the number in the file name (None: the manager's counter).

    Returns:
      The saved checkpoint's path.

    Raises:
      ModelDirError: the write failed; the message names the newest complete checkpoint.
    """
    try:
        return manager.save(checkpoint_number=checkpoint_number)
    except (OSError, tf.errors.OpError) as e:
        reason = str(getattr(e, "message", "") or e).strip().splitlines()
        raise ModelDirError(
            f"cannot write a checkpoint into {manager.directory} "
            f"({type(e).__name__}: {reason[0] if reason else ''}); the newest complete "
            f"checkpoint is {manager.latest_checkpoint}. Free space (or fix the directory) "
            "and rerun the same command to resume from it") from None


class RunCheckpoints:
    """A run's checkpoint, whole (to resume) and without its data (to roll back).

    Everything a run must not lose is tracked by one `tf.train.Checkpoint`:
    models, optimizers, counters, random generators and the data iterators.
    Resuming restores all of it, so a resumed run sees the batches an
    uninterrupted one would. A roll-back after NaN/Inf restores everything but
    the data iterators, so the retry trains on the next batches rather than
    repeating the ones that diverged.

    Args:
      state: name -> trackable (variables, models, optimizers ...) of the run.
      data: name -> data iterator; create them before `restore` so their
        position is restored too.
      model_dir: the run directory; checkpoints go to ``model_dir/checkpoints``.
      max_to_keep: how many recent checkpoints to keep.
      fresh_data: a callable that replaces the run's data iterators by new ones at the
        start of the data and returns them as ``data`` (names alike): used by `restore`
        when the saved positions do not fit. None: such a checkpoint cannot be resumed.
    """

    def __init__(self, state: dict, data: dict, model_dir: str, max_to_keep: int,
                 fresh_data=None):
        self.model_dir = model_dir
        self._fresh_data = fresh_data
        self.state = tf.train.Checkpoint(**state)
        self.whole = tf.train.Checkpoint(**state, **data)
        self.manager = ChiefCheckpoints(self.whole, model_dir, rundir.CHECKPOINTS,
                                        max_to_keep=max_to_keep)

    @property
    def directory(self) -> str:
        """The folder of the run's checkpoints, ``model_dir/checkpoints``."""
        return self.manager.directory

    @property
    def latest(self) -> Optional[str]:
        """The newest checkpoint's path (None before the first save)."""
        return self.manager.latest_checkpoint

    def manager_for(self, subdir: str, max_to_keep: int | None) -> ChiefCheckpoints:
        """Another folder of whole checkpoints of this run (e.g. "best").

        Args:
          subdir: the folder's name in ``model_dir``.
          max_to_keep: how many recent checkpoints the chief keeps there (None: all).

        Returns:
          A `ChiefCheckpoints` saving the same state as this run's checkpoint.
        """
        return ChiefCheckpoints(self.whole, self.model_dir, subdir, max_to_keep=max_to_keep)

    def save(self, number: int | None = None) -> str:
        """Save everything through `save_checkpoint`.

        Args:
          number: the number in the file name (None: the manager's counter).

        Returns:
          The checkpoint's path.

        Raises:
          ModelDirError: the checkpoint could not be written.
        """
        return save_checkpoint(self.manager, checkpoint_number=number)

    def restore(self) -> Optional[str]:
        """Resume: restore everything from the newest readable checkpoint (None: none).

        When no checkpoint's data positions fit this run's input pipeline (TensorFlow
        refuses an iterator state that a pipeline built otherwise saved, e.g. by an older
        autogan-tf) and ``fresh_data`` was given, the rest is restored from the newest
        readable checkpoint and the data starts again, with a warning: the run keeps its
        training; only its batches differ from an uninterrupted run's.

        Raises:
          CheckpointError: checkpoints exist but none can be read (see `restore_latest`).
        """
        try:
            return restore_latest(self.manager, self.whole)
        except CheckpointError as whole_error:
            if self._fresh_data is None:
                raise
            try:  # the iterators a failed restore touched are unusable: new ones
                path = restore_latest(self.manager, self.state, expect_partial=True)
            except CheckpointError:
                raise whole_error from None
            for name, iterator in self._fresh_data().items():
                setattr(self.whole, name, iterator)  # saved from now on, "best" ones too
            logging.warning("restored %s without the position of its data iterators, which "
                            "an input pipeline built differently saved (an older version?): "
                            "the data starts again from its beginning", path)
            return path

    def roll_back(self) -> Optional[str]:
        """Restore all but the data iterators from the newest readable checkpoint.

        The data iterators keep their current position, so the retry sees new batches.

        Returns:
          The restored path, or None when there is no checkpoint.
        """
        return restore_latest(self.manager, self.state, expect_partial=True)
