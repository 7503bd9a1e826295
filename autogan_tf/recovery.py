"""What a long run does when something goes wrong, shared by the search and the training.

Two faults are survivable:

* Divergence: a NaN/Inf loss or weight (`make_finite_check` catches the
  weights a compiled step silently poisoned). `NonFiniteRollback` restores
  the last good checkpoint, all but the data iterators, so the retry trains on
  the next batches; after ``--max_nan_restores`` retries the run stops.
* Preemption: SIGTERM (a preemptible machine about to go) or SIGINT.
  `Preemption` turns the signal into a flag the run polls at safe points,
  where it checkpoints and returns; rerunning the command resumes.

The callers keep their own log records and error types; this module keeps the
mechanics they share.
"""

from __future__ import annotations

import signal
from typing import Callable, Optional

import tensorflow as tf
from absl import logging


def make_finite_check(*models):
    """A compiled ``() -> bool tensor``: every float variable of ``models`` is finite.

    Finite losses do not prove a finite model: in a compiled step a NaN that
    reaches a ReLU can come out as 0, so a generator whose output is NaN (and a
    discriminator poisoned by its gradients) can leave the hinge losses at
    d_loss = 2, g_loss = 0 (seen on CPU with oneDNN). Checked after every
    iteration, this catches such a divergence in the step it happens.

    Args:
      *models: Keras models (or anything with ``variables``).

    Returns:
      A `tf.function` without arguments returning a scalar bool tensor.
    """
    variables = [v for model in models for v in model.variables
                 if tf.as_dtype(v.dtype).is_floating]

    @tf.function
    def all_finite():
        return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in variables]))

    return all_finite


class NonFiniteRollback:
    """Counts a run's NaN/Inf events and rolls its state back to the last good checkpoint.

    Usage at each divergence: `count_one`, log it, stop if `exhausted`, else
    `restore` (None: no checkpoint yet, stop too).

    Args:
      checkpoints: the run's `checkpointing.RunCheckpoints`.
      max_restores: how many roll-backs are allowed (``--max_nan_restores``).
    """

    def __init__(self, checkpoints, max_restores: int):
        self.checkpoints = checkpoints
        self.max_restores = max_restores
        self.count = 0

    def count_one(self) -> int:
        """Record one divergence; returns how many there were in this process."""
        self.count += 1
        return self.count

    @property
    def exhausted(self) -> bool:
        """More divergences than allowed roll-backs."""
        return self.count > self.max_restores

    def restore(self, reason: str) -> Optional[str]:
        """Roll back to the newest readable checkpoint, keeping the data's position.

        Args:
          reason: what diverged, for the warning.

        Returns:
          The restored checkpoint, or None when the budget is spent or there is
          no checkpoint yet.
        """
        if self.exhausted:
            return None
        path = self.checkpoints.roll_back()
        if path is not None:
            logging.warning("%s: restored %s (retry %d of --max_nan_restores=%d) with the next "
                            "batches of data; nothing else is changed", reason, path,
                            self.count, self.max_restores)
        return path

    def restored_record(self, path: str) -> dict:
        """The fields a run logs with its ``restored_after_nonfinite`` event.

        Args:
          path: the checkpoint `restore` returned.

        Returns:
          ``{"checkpoint", "restores_so_far", "max_nan_restores"}``.
        """
        return {"checkpoint": path, "restores_so_far": self.count,
                "max_nan_restores": self.max_restores}


class Preemption:
    """Turns SIGTERM/SIGINT into a flag that a loop polls at a safe point, so it can
    checkpoint and exit cleanly (a preemptible machine sends SIGTERM before it goes).

    A second SIGINT raises KeyboardInterrupt at once, for an impatient Ctrl-C.
    Handlers are installed only in the main thread and restored on exit.
    """

    def __init__(self):
        self.requested = False
        self.signal = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        logging.warning("signal %d received: checkpointing at the next safe point, then "
                        "stopping (rerun the same command to resume)", signum)
        self.requested = True
        self.signal = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def checkpoint_if_requested(self, save: Callable[[], str],
                                saved: Optional[str] = None) -> Optional[str]:
        """At a safe point: None to go on, or, after a signal, the checkpoint to resume from.

        Args:
          save: writes a checkpoint and returns its path.
          saved: the checkpoint the caller has just written (then nothing is saved again).

        Returns:
          None when no signal came; else ``saved`` or the path ``save()`` wrote.
        """
        if not self.requested:
            return None
        return saved if saved is not None else save()
