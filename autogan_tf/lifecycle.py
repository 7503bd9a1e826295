"""The life of a long run, written once for the search and the final training.

`start` takes a run from its command to its result: the run directory is
checked (writable, room on the disk, the same configuration as a run it
resumes), the run is built and restored from its newest checkpoint, it runs,
and its log is closed. `LongRun` is what the search (`search.loop.Search`) and
the training (`training.TrainingRun`) derive from: each supplies its steps
(`LongRun.advance`), where it is (`LongRun.position`) and its result
(`LongRun.finish`); the lifecycle supplies what happens when something goes
wrong:

* Divergence: a step raises `Diverged` when a loss, a weight or a reward is
  NaN/Inf. The run rolls back to its last good checkpoint (everything but the
  data iterators, so the retry sees the next batches) and goes on, at most
  ``--max_nan_restores`` times; then it stops with an `errors.RunError` naming
  the checkpoint kept and what to change.
* Preemption: SIGTERM or SIGINT. At its next safe point (`LongRun.safe_point`)
  the run checkpoints and returns ``{"preempted": True, ...}``; the command
  exits with status 75 and rerunning it resumes. In a multi-worker job the
  signal reaches one host: at every safe point the workers vote (one small
  all-reduce), so all of them checkpoint at the same step and exit 75 together.
* A lost worker: a collective that finds a peer gone (the coordination service's
  heartbeats, or ``--collective_timeout``) stops every survivor with one line
  naming the worker and the checkpoint to resume from, exit status 75
  (`WorkerLost`), so a scheduler reruns the whole job.

Why not TensorFlow's ``PreemptionCheckpointHandler``: it owns the checkpoint
(its manager, its directory, its restore at construction) and counts one step
per call of the function it runs. Our runs keep their own checkpoint (the chief
writes ``model_dir``, the data positions, the roll-back view) and stop at
controller steps too, so the same agreement is made here with one all-reduce
per safe point and the checkpoint code the runs already share.
"""

from __future__ import annotations

import re
import signal
import time
from typing import Callable, Optional

import tensorflow as tf
from absl import logging

from autogan_tf import distribute, errors, rundir


class Diverged(Exception):
    """A non-finite loss, weight or reward: the state since the last checkpoint is poisoned.

    Raised by a run's step; `LongRun.run` catches it. ``args[0]`` says what diverged.
    """


class Preempted(Exception):
    """A signal asked the run to stop; it is checkpointed in ``args[0]``."""


class WorkerLost(errors.AutoganError):
    """Another worker of a multi-worker job went away (killed, crashed, unreachable).

    The survivors cannot go on (their collectives have no peer) nor checkpoint (saving
    needs every worker): they stop, naming the newest complete checkpoint. The exit status
    is 75, a scheduler's "rerun": rerunning every worker resumes from it.
    """

    exit_status = 75


# The errors a collective raises when a peer is gone or silent.
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                tf.errors.AbortedError)


_PEER_FAILURES = (("stopped sending heartbeats", "it stopped sending heartbeats"),
                  ("Connection reset by peer", "its connection was reset"),
                  ("Socket closed", "its connection closed"),
                  ("Connection refused", "it refused connections"))


def _peer_failure(error) -> str:
    """What happened to the peer, in a few words, from a collective's error."""
    text = str(getattr(error, "message", error))
    for phrase, words in _PEER_FAILURES:
        if phrase in text:
            return words
    if isinstance(error, tf.errors.DeadlineExceededError):
        return "no answer within --collective_timeout"
    lines = [re.sub(r"\{\{[^}]*\}\}\s*", "", line).strip() for line in text.splitlines()]
    return next((line for line in lines if line and not line.endswith(":")), type(error).__name__)[:200]


def _lost_worker(error) -> str:
    """Which other task an error of a collective names, as "worker 1"; "a worker" if none."""
    me = distribute.task()
    for job, index in re.findall(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)",
                                 str(getattr(error, "message", error))):
        if (job, int(index)) != me:
            return f"{job} {index}"
    return "a worker"


# -- the mechanics of the faults ------------------------------------------------------------
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


# -- the run -----------------------------------------------------------------------------------
def _stop_vote(strategy):
    """A compiled ``vote([asked, asked * task]) -> sums over every replica of every worker``:
    how many workers were asked to stop, and (for one) which."""

    @tf.function(autograph=False)
    def vote(local):
        per_replica = strategy.run(lambda: tf.identity(local))
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
        return total[0] / strategy.num_replicas_in_sync * distribute.num_workers(), \
            total[1] / strategy.num_replicas_in_sync * distribute.num_workers()

    return vote


class LongRun:
    """A run that checkpoints, survives NaN/Inf and signals, and resumes (see the module).

    A subclass calls ``super().__init__`` once its checkpoints and log exist, and provides
    `advance`, `position` and `finish` (and may extend `log_event`).

    Args:
      model_dir: the run directory.
      checkpoints: the run's `checkpointing.RunCheckpoints`.
      max_nan_restores: roll-backs allowed (``--max_nan_restores``).
      log: the run's `runlog.RunLog` (events are its JSON lines).
      strategy: the `tf.distribute` strategy the run trains under (None: the current one);
        with several workers, they agree on when to stop (`safe_point`).
    """

    def __init__(self, model_dir: str, checkpoints, max_nan_restores: int, log, strategy=None):
        self.model_dir = model_dir
        self.chief = distribute.is_chief()
        self.checkpoints = checkpoints
        self.rollback = NonFiniteRollback(checkpoints, max_nan_restores)
        self.log = log
        self._preemption = None
        self.workers = distribute.num_workers()
        self._vote = _stop_vote(strategy or tf.distribute.get_strategy()) \
            if self.workers > 1 else None

    # -- what a run supplies -------------------------------------------------------------
    def advance(self) -> None:
        """Run from the restored position to the end; raise `Diverged` on NaN/Inf and call
        `safe_point` where a signal may stop the run."""
        raise NotImplementedError

    def position(self) -> dict:
        """Where the run is (``{"step": 12}``, ``{"iteration": 3, ...}``), for logs and
        messages."""
        raise NotImplementedError

    def finish(self) -> dict:
        """The run's result, once `advance` returned."""
        raise NotImplementedError

    def log_event(self, record: dict) -> None:
        """Write an event (``resumed``, ``nonfinite``, ``preempted`` ...) to the run's log.

        Args:
          record: the event's fields, ``event`` among them.
        """
        self.log.log(record)

    # -- the lifecycle ---------------------------------------------------------------------
    def describe_position(self) -> str:
        """The position in words: ``"step 12"``, ``"iteration 3, phase 0, phase_step 7"``."""
        return ", ".join(f"{k} {v}" for k, v in self.position().items())

    def resume(self):
        """Restore the newest readable checkpoint, if any (logged as ``resumed``).

        Returns:
          Its path, or None for a new run.
        """
        path = self.checkpoints.restore()
        if path:
            logging.info("resumed from %s at %s", path, self.describe_position())
            self.log_event({"event": "resumed", "checkpoint": path, **self.position()})
        return path

    def save(self, number: int | None = None) -> str:
        """Checkpoint everything; returns the path.

        Args:
          number: the number in the file name (None: the checkpoint manager's counter).
        """
        return self.checkpoints.save(number)

    def safe_point(self, saved: str | None = None) -> None:
        """Where the run may stop: if a signal asked it (or, in a multi-worker job, any
        worker) to, checkpoint (unless ``saved`` is the checkpoint just written) and raise
        `Preempted`.

        Every worker calls this at the same points in the same order, so their votes (one
        all-reduce each) line up and they all stop at the same step.

        Args:
          saved: the path of a checkpoint written at this very point, or None.
        """
        if self._preemption is None:
            return
        asked = self._preemption.requested
        if self._vote is not None:
            count, task_sum = self._vote(tf.constant(
                [float(asked), float(asked) * distribute.task()[1]]))
            if not count:
                return
            if not asked:
                logging.warning("worker %d was asked to stop: every worker checkpoints at %s "
                                "and stops", int(round(float(task_sum) / float(count))),
                                self.describe_position())
        elif not asked:
            return
        raise Preempted(saved if saved is not None else self.save())

    def run(self) -> dict:
        """`advance` to the end and return `finish`'s result; after a signal, the checkpoint
        and ``{"preempted": True, ...}`` instead (rerun to resume).

        Raises:
          errors.RunError: more NaN/Inf than ``--max_nan_restores`` allows, or one before
            the first checkpoint.
        """
        with Preemption() as preemption:
            self._preemption = preemption
            try:
                while True:
                    try:
                        self.advance()
                        break
                    except Diverged as e:
                        self._roll_back(str(e))
            except Preempted as stop:
                return self._preempted(stop.args[0], preemption.signal)
            except _PEER_ERRORS as e:
                if self.workers == 1:
                    raise
                raise self._worker_lost(e) from None
            finally:
                self._preemption = None
        return self.finish()

    def _worker_lost(self, error) -> WorkerLost:
        """The one line a survivor stops with when a collective lost its peer."""
        reason = _peer_failure(error)
        self.log.log({"event": "worker_lost", "reason": reason, **self.position()})  # the line
        # below is what the terminal shows
        return WorkerLost(f"{_lost_worker(error)} of the cluster went away ({reason}); this "
                          f"worker stops too at {self.describe_position()}. Rerun every worker "
                          f"to resume from {self.checkpoints.latest}")

    def _roll_back(self, reason: str) -> None:
        """Back to the last good checkpoint after a NaN/Inf, or stop when out of retries."""
        where = self.describe_position()
        count = self.rollback.count_one()
        self.log_event({"event": "nonfinite", "reason": reason, **self.position(),
                        "restores_so_far": count})
        advice = (f"The last good checkpoint is kept in {self.checkpoints.directory}. Lower "
                  "--g_lr/--d_lr or check the data")
        if self.rollback.exhausted:
            raise errors.RunError(
                f"{reason} at {where}; this is non-finite value number {count}, more than "
                f"--max_nan_restores={self.rollback.max_restores}. {advice}")
        path = self.rollback.restore(reason)
        if path is None:
            raise errors.RunError(f"{reason} at {where}, before the first checkpoint: "
                                  f"nothing to restore. {advice}")
        self.log_event({"event": "restored_after_nonfinite", **self.position(),
                        **self.rollback.restored_record(path)})

    def _preempted(self, checkpoint: str, signal) -> dict:
        record = {"event": "preempted", "checkpoint": checkpoint, "signal": signal,
                  **self.position()}
        self.log_event(record)
        why = f"signal {signal}" if signal is not None else "another worker's signal"
        logging.warning("stopped after %s at %s; checkpoint %s. Rerun the same command to "
                        "resume", why, self.describe_position(), checkpoint)
        return {"preempted": True, **record}

    def close(self) -> None:
        """Close the run's log (ends an open progress line)."""
        self.log.close()


def run_resolution(config) -> int:
    """The side of the images a run generates: a training's, or a search's last stage's."""
    if hasattr(config, "resolution"):
        return config.resolution(config.num_cells - 1)
    return config.image_size


def start(build, config, model_dir: str, check_config, min_free_mb: float = 200.0) -> dict:
    """Hold ``model_dir``, check it, build the run, resume it, run it to its result.

    In order, so that a refused flag, a full disk or another run's directory cost seconds,
    not the minutes of training a classifier or the hours of a run: the lock
    (`rundir.locked`), room on the disk, a conditional model's class count (read from the
    data set when not given), the saved configuration, then
    ``--classifier=auto`` or ``label_free:KIND`` (a network trained on the data set, cached
    in ``model_dir``; ``config.classifier`` becomes its path), then the run.

    Args:
      build: ``build() -> LongRun``, called once the directory is accepted.
      config: the run's configuration (`config.SearchConfig`, `config.TrainConfig`); an
        ``"auto"`` or ``"label_free:KIND"`` classifier is replaced in place by the path of
        the one trained.
      model_dir: the run directory (created; one holding a run of this configuration
        resumes it).
      check_config: ``check_config(model_dir, config)``: records the configuration or
        refuses a directory holding another.
      min_free_mb: refuse to start with less free disk space (MB).

    Returns:
      The run's result (or its preemption record) with ``chief``.

    Raises:
      rundir.RunDirLocked: another process writes ``model_dir`` (each worker of a
        multi-worker job holds its own directory: the chief ``model_dir``).
      rundir.ModelDirError: an unusable directory.
      errors.RunUserError: another configuration in ``model_dir``.
      errors.RunError: the run diverged more often than allowed.
    """
    from autogan_tf import conditional
    from autogan_tf.metrics import scorer

    with rundir.locked(distribute.worker_dir(model_dir)):
        rundir.check_writable(distribute.worker_dir(model_dir), min_free_mb=min_free_mb)
        if getattr(config, "conditional", False):  # the class count, recorded with the run
            config.num_classes = conditional.with_classes(config).num_classes
        check_config(model_dir, config)  # seconds: before minutes of training a classifier
        logging.info("computing in %s (%s)", config.precision, config.precision_reason)
        if scorer.trained_for_run(config.classifier):  # trained on the data, cached here
            config.classifier = scorer.resolve_classifier(
                config.classifier, config.dataset, model_dir, config.data_dir,
                config.label_free_steps, run_resolution(config))
            check_config(model_dir, config)  # records its path
        run = build()
        run.resume()
        t0 = time.time()
        try:
            result = run.run()
            run.log.log({"event": "wall_time", "seconds": time.time() - t0})  # the log only
        finally:
            run.close()
    distribute.cleanup_worker_dir(model_dir)
    return {**result, "chief": run.chief}
