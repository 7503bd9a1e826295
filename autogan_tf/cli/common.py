"""Flag helpers shared by the autogan-* command lines."""

import os
import sys

from absl import flags

# sysexits.h EX_TEMPFAIL: "try again later". A run stopped by SIGTERM/SIGINT after
# checkpointing exits with it, so Slurm (--requeue) or a Kubernetes Job retries it.
EX_TEMPFAIL = 75


def resolve_flagfiles(argv):
    """``--flagfile=X`` where no file X exists: X (or its base name, minus ``.cfg``) names
    a shipped flagfile -> its installed path. Unknown names stop with a one-line error."""
    from autogan_tf import flagfiles

    resolved = []
    for arg in argv:
        if arg.startswith("--flagfile="):
            value = arg.split("=", 1)[1]
            path = flagfiles.resolve(value)
            if path is None:
                raise SystemExit(f"{os.path.basename(argv[0])}: error: --flagfile={value}: no "
                                 f"such file, and not a shipped flagfile "
                                 f"({', '.join(sorted(flagfiles.shipped()))})")
            arg = f"--flagfile={path}"
        resolved.append(arg)
    return resolved


def run(main):
    """Entry point of a command line: resolve shipped flagfiles, then ``app.run(main)``."""
    from absl import app

    sys.argv = resolve_flagfiles(sys.argv)
    app.run(main)


def exit_if_preempted(result, command: str):
    """After a job returned ``{"preempted": True, ...}``: exit with `EX_TEMPFAIL`."""
    if result.get("preempted"):
        print(f"{command}: stopped by a signal after checkpointing; rerun the same command to "
              f"resume (exit status {EX_TEMPFAIL})", file=sys.stderr)
        sys.stdout.flush()
        raise SystemExit(EX_TEMPFAIL)


def resolve_classifier(classifier, dataset, model_dir, data_dir=None):
    """'auto' becomes a small classifier trained on ``dataset`` once, cached in model_dir."""
    import os

    if classifier != "auto":
        return classifier
    from autogan_tf import distribute, pipeline

    cached = os.path.join(model_dir, "classifier.keras")
    if os.path.exists(cached) or distribute.is_chief():
        return pipeline.train_small_classifier(dataset, cached, data_dir=data_dir)
    # Another worker of a multi-worker job, before the chief has one: train its own in its
    # scratch directory (never into model_dir). Scores stay the same on every worker: the
    # features of each replica's share are gathered from all of them.
    return pipeline.train_small_classifier(
        dataset, os.path.join(distribute.worker_dir(model_dir), "classifier.keras"),
        data_dir=data_dir)


def define_generator_flags(verb: str):
    """``--checkpoint`` (latest/best) and ``--generator`` (ema/raw): which trained G to ``verb``."""
    flags.DEFINE_enum("checkpoint", "latest", ["latest", "best"], f"Which checkpoint to {verb}.")
    flags.DEFINE_enum("generator", "ema", ["ema", "raw"],
                      "ema: the moving average of G's weights (the paper's choice); raw: the "
                      "weights the last G step left.")


def define_runtime_flags():
    """Flags of how TensorFlow uses this host, shared by every command that computes."""
    flags.DEFINE_integer(
        "inter_op_threads", -1,
        "TensorFlow ops run at the same time: -1 = 1 on a host without GPUs (each convolution "
        "already uses every core through oneDNN; measured 2% faster on 2 cores) and "
        "TensorFlow's default with GPUs; 0 = TensorFlow's default.")
    flags.DEFINE_integer("intra_op_threads", 0,
                         "Threads one op may use (0: TensorFlow's default, all cores).")
    flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                      "tf.distribute strategy: default (one device), mirrored (this host's "
                      "GPUs, or --cpu_devices logical CPUs) or multi_worker (several hosts, "
                      "configured by the TF_CONFIG environment variable; see the README). "
                      "Batch sizes are global.")
    flags.DEFINE_enum("sync_bn", "auto", ["auto", "true", "false"],
                      "Batch norm in G over the global batch (synchronised across replicas): "
                      "auto = on whenever there is more than one replica.")
    flags.DEFINE_integer("cpu_devices", 0,
                         "Split the host CPU into N logical devices for --strategy=mirrored "
                         "(to try data parallelism without GPUs; 0: do not split).")


def apply_runtime_flags(values=None, distributed=False):
    """Configure TensorFlow from the runtime flags; first thing in ``main``.

    Returns the `tf.distribute` strategy; a command that cannot run under
    one (``distributed=False``) refuses ``--strategy`` other than default.
    """
    from absl import app

    from autogan_tf import distribute

    from autogan_tf.cli import output

    output.configure()
    values = values or flags.FLAGS
    try:
        distribute.configure_threads(values.inter_op_threads, values.intra_op_threads)
    except distribute.DistributeError as e:
        raise app.UsageError(str(e)) from None
    if not distributed and values.strategy != "default":
        raise app.UsageError(f"--strategy={values.strategy} is not supported by this command; "
                             "use it with autogan-search, autogan-train, autogan-evaluate or "
                             "autogan-fid-stats")
    try:
        return distribute.make_strategy(values.strategy, values.cpu_devices)
    except distribute.DistributeError as e:
        raise app.UsageError(str(e)) from None


def sync_bn(values, strategy) -> bool:
    """``--sync_bn``: auto means synchronised batch norm with more than one replica."""
    if values.sync_bn == "auto":
        return strategy.num_replicas_in_sync > 1
    return values.sync_bn == "true"
