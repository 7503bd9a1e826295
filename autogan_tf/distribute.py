"""Which `tf.distribute` strategy a command runs under: the only module that knows their names.

* ``default``: no distribution (one device).
* ``mirrored``: `MirroredStrategy` over this host's GPUs, or over ``--cpu_devices``
  logical CPU devices (to try and test data parallelism on a machine without GPUs).
* ``multi_worker``: `MultiWorkerMirroredStrategy`, configured by ``TF_CONFIG``.

Batch sizes given on the command line are global; see `gan_trainer` for how
losses are scaled by the global batch. Every worker of a multi-worker job runs
the same program on the same data and seeds, so everything decided on the
host (the controller's samples, the rewards, dynamic resets, when to save)
comes out the same on every worker; values that replicas compute are summed or
gathered across all of them, so they are bit-identical everywhere.

Writes: only the chief writes into ``--model_dir``. Saving a checkpoint may
need every worker (reading a variable can be a collective op), so the others
save too, into a scratch directory (`worker_dir`) that they delete right after
each save and at the end; every worker restores from the chief's checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil

import tensorflow as tf

from autogan_tf import errors, rundir

STRATEGIES = ("default", "mirrored", "multi_worker")


class DistributeError(errors.UserError):
    """A strategy that cannot be built as asked."""


def configure_cpu_devices(count: int) -> None:
    """Split the host CPU into ``count`` logical devices (before TensorFlow starts using it).

    Args:
      count: the number of logical CPU devices; 0 or 1 leaves the CPU as it is.

    Raises:
      DistributeError: TensorFlow already started with another number of CPU devices.
    """
    if count <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError as e:
        current = len(tf.config.list_logical_devices("CPU"))
        if current != count:
            raise DistributeError(
                f"--cpu_devices={count}: TensorFlow already started with {current} CPU "
                f"device(s); set it before any other TensorFlow work ({e})") from None


def configure_threads(inter_op: int = -1, intra_op: int = 0) -> None:
    """Set TensorFlow's thread pools; call before the first TensorFlow op.

    ``inter_op=-1`` (the command lines' default) means 1 on a host without
    GPUs and TensorFlow's default otherwise; 0 keeps TensorFlow's default.
    Why 1 on CPU: each convolution already asks oneDNN for every core, so
    running independent ops of a step at once only makes them share the
    cores. On the 2-core development machine, quiet, a 256-channel generator
    forward and backward pass was 2% faster with 1 than with the default;
    the derived training step (256/128) was equally fast both ways.

    Args:
      inter_op: threads running independent ops at once (-1: automatic, 0: TensorFlow's
        default).
      intra_op: threads inside one op (0: TensorFlow's default).

    Raises:
      DistributeError: TensorFlow already started with other explicitly requested values.
    """
    automatic = inter_op < 0
    if automatic:
        inter_op = 0 if tf.config.list_physical_devices("GPU") else 1
    try:
        if inter_op:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
        if intra_op:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    except RuntimeError as e:  # TensorFlow already started (e.g. a command run in-process)
        if automatic and not intra_op:
            return
        if (inter_op and tf.config.threading.get_inter_op_parallelism_threads() != inter_op) or (
                intra_op and tf.config.threading.get_intra_op_parallelism_threads() != intra_op):
            raise DistributeError(
                "--inter_op_threads/--intra_op_threads must be set before TensorFlow "
                f"starts ({e})") from None


COLLECTIVE_TIMEOUT = 300.0  # seconds a collective waits for the other workers (multi_worker)


def make_strategy(name: str = "default", cpu_devices: int = 0,
                  collective_timeout: float = COLLECTIVE_TIMEOUT) -> tf.distribute.Strategy:
    """The strategy for ``--strategy=name`` (and ``--cpu_devices``).

    Args:
      name: one of `STRATEGIES`.
      cpu_devices: logical CPU devices to split the host CPU into first (0: none), see
        `configure_cpu_devices`.
      collective_timeout: "multi_worker" only: seconds a collective may wait for the other
        workers before it fails (0: forever), so a job that lost a worker stops.

    Returns:
      A `tf.distribute.Strategy`; for "default" the current (default) strategy.

    Raises:
      DistributeError: an unknown name, a negative ``cpu_devices``, or "multi_worker"
        without a valid ``TF_CONFIG``.
    """
    if name not in STRATEGIES:
        raise DistributeError(f"--strategy must be one of {STRATEGIES}, got {name!r}")
    if cpu_devices < 0:
        raise DistributeError(f"--cpu_devices must be >= 0, got {cpu_devices}")
    configure_cpu_devices(cpu_devices)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise DistributeError("--strategy=multi_worker needs the TF_CONFIG environment "
                                  "variable (cluster and task); see the README's two-host example")
        try:
            config = json.loads(os.environ["TF_CONFIG"])
            config["cluster"], config["task"]["type"]  # noqa: B018 - both must be there
        except (ValueError, KeyError, TypeError) as e:
            raise DistributeError(f"TF_CONFIG must be JSON with 'cluster' and 'task' "
                                  f"({type(e).__name__}: {e})") from None
        # A collective that waits longer than this for a peer fails instead of hanging: the
        # coordination service's heartbeats find a dead worker in seconds, and this bounds
        # whatever they miss (0: no bound).
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=collective_timeout or None)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def num_workers() -> int:
    """Workers (and chief) of the cluster ``TF_CONFIG`` describes; 1 without it."""
    cluster = _tf_config().get("cluster", {})
    return max(1, sum(len(cluster.get(job, [])) for job in ("chief", "worker")))


def _tf_config() -> dict:
    """TF_CONFIG as a dict; {} when unset or not JSON (`make_strategy` rejects the latter
    for --strategy=multi_worker; other strategies ignore TF_CONFIG)."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def task() -> tuple[str, int]:
    """This process's (task type, index) from TF_CONFIG; ("chief", 0) without it."""
    info = _tf_config().get("task", {})
    return info.get("type", "chief"), int(info.get("index", 0))


def is_chief() -> bool:
    """The chief writes checkpoints, summaries and results; the others write to scratch."""
    config = _tf_config()
    kind, index = task()
    has_chief = "chief" in config.get("cluster", {})
    return kind == "chief" or (not has_chief and kind == "worker" and index == 0)


def worker_dir(model_dir: str) -> str:
    """``model_dir`` on the chief; a per-worker scratch directory below it elsewhere.

    Args:
      model_dir: the run directory.
    """
    if is_chief():
        return model_dir
    kind, index = task()
    return os.path.join(model_dir, rundir.WORKERS, f"{kind}_{index}")


def cleanup_worker_dir(model_dir: str) -> None:
    """Remove this worker's scratch directory (a no-op on the chief).

    Args:
      model_dir: the run directory whose ``.workers/<task>`` scratch folder is removed.
    """
    path = worker_dir(model_dir)
    if path != model_dir:
        shutil.rmtree(path, ignore_errors=True)


# -- work split across replicas --------------------------------------------------
_GATHERABLE = (tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int32, tf.int64)


class ReplicaSplit:
    """``fn(x, *shared)`` on a global batch ``x``, each replica computing one slice.

    The outputs (tensors or a tuple of them) are gathered from every replica of
    every worker in batch order, so all workers get the same values bit for
    bit. A batch that does not divide by the number of replicas is padded with
    zeros and the padding's outputs dropped. With one replica this is ``fn``
    compiled. Used for sampling and feature extraction (rewards, IS/FID,
    statistics).

    Args:
      strategy: the `tf.distribute.Strategy` whose replicas share the work.
      fn: ``fn(x, *shared)`` returning a tensor or a tuple of tensors with the batch first.
    """

    def __init__(self, strategy, fn):
        self.strategy = strategy
        self.fn = fn
        self.replicas = strategy.num_replicas_in_sync
        # Several replicas: one trace per batch shape (a full and a last batch), so each
        # replica's slice has a static size, which extractors need.
        self._compiled = (tf.function(fn, reduce_retracing=True) if self.replicas == 1
                          else tf.function(self._split))

    def _split(self, x, *shared):
        replicas = self.replicas
        size = x.shape[0] // replicas
        parts = tf.reshape(x, [replicas, size, *x.shape[1:]])

        def on_replica():
            index = tf.distribute.get_replica_context().replica_id_in_sync_group
            return self.fn(tf.gather(parts, index), *shared)

        dtypes = []

        def widened():  # collectives across workers move floats and 32/64-bit ints only
            out = on_replica()
            dtypes[:] = [t.dtype for t in tf.nest.flatten(out)]
            return tf.nest.map_structure(
                lambda t: t if t.dtype in _GATHERABLE else tf.cast(t, tf.int32), out)

        out = self.strategy.run(widened)
        flat = [tf.cast(self.strategy.gather(part, axis=0), dtype)
                for part, dtype in zip(tf.nest.flatten(out), dtypes)]
        return tf.nest.pack_sequence_as(out, flat)

    def __call__(self, x, *shared):
        if self.replicas == 1:
            return self._compiled(x, *shared)
        x = tf.convert_to_tensor(x)
        n = int(x.shape[0])
        pad = -n % self.replicas
        if pad:
            x = tf.concat([x, tf.zeros([pad, *x.shape[1:]], x.dtype)], 0)
        out = self._compiled(x, *shared)
        return tf.nest.map_structure(lambda t: t[:n], out) if pad else out


class SplitExtractor:
    """A feature extractor (see `metrics.classifiers`) whose batches are split across
    the replicas; same ``name``, ``feature_dim`` and ``num_classes``.

    Args:
      extractor: a feature extractor with ``name`` and ``feature_dim`` (and possibly
        ``num_classes``), called on a batch of images.
      strategy: the `tf.distribute.Strategy` whose replicas share each batch.
    """

    def __init__(self, extractor, strategy):
        self.extractor = extractor
        self.name = extractor.name
        self.feature_dim = extractor.feature_dim
        self.num_classes = getattr(extractor, "num_classes", None)
        self._split = ReplicaSplit(strategy, lambda images: tuple(extractor(images)))

    def __call__(self, images):
        return self._split(images)


def split_extractor(extractor, strategy=None):
    """``extractor`` itself on one replica, else a `SplitExtractor`.

    Args:
      extractor: a feature extractor (see `metrics.classifiers`).
      strategy: a `tf.distribute.Strategy`, or None for one replica.

    Returns:
      ``extractor`` or a `SplitExtractor` wrapping it.
    """
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return extractor
    return SplitExtractor(extractor, strategy)
