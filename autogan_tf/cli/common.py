"""Flag helpers shared by the autogan-* command lines."""

import dataclasses
import os
import sys
import typing

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


def define_dataclass_flags(cls, helps, skip=()):
    """One absl flag per dataclass field, typed from its default; help text from ``helps``."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        default = field.default
        help_text = helps.get(field.name, field.name.replace("_", " "))
        hint = hints[field.name]
        if hint is bool:
            flags.DEFINE_bool(field.name, default, help_text)
        elif hint is int:
            flags.DEFINE_integer(field.name, default, help_text)
        elif hint is float:
            flags.DEFINE_float(field.name, default, help_text)
        else:
            flags.DEFINE_string(field.name, default, help_text)


def dataclass_from_flags(cls, values, **overrides):
    kwargs = {f.name: getattr(values, f.name) for f in dataclasses.fields(cls)
              if f.name in values}
    kwargs.update(overrides)
    return cls(**kwargs)



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


# Help texts of the TrainConfig flags, shared by autogan-train and autogan-derive.
TRAIN_HELPS = {
    "arch": "Architecture: alias (autogan_cifar10_a), vector '1 0 1 1 ...', or JSON file.",
    "dataset": "cifar10, stl10, shapes (built in) or folder:PATH.",
    "data_dir": "tensorflow-datasets data directory.",
    "max_iters": "Generator iterations (each is n_critic D steps + 1 G step).",
    "lr_decay": "Linear learning-rate decay to 0 over max_iters (the paper's run: off).",
    "ema_decay": "Decay of the exponential moving average of G's weights used for eval/export.",
    "ema_warmup": "bias_correction: the EMA is the bias-corrected average of the weights seen "
                  "so far (as Adam's moments), useful from the first iterations and equal to "
                  "the paper's at full length; none: the official average, started at the "
                  "initial weights (mostly random init for the first few thousand iterations "
                  "at 0.999).",
    "save_every": "Checkpoint every N generator iterations (0: only at the end).",
    "eval_every": "Evaluate IS/FID every N generator iterations (0: never).",
    "eval_num_samples": "Samples per evaluation (paper: 50000).",
    "classifier": "'inception' (2015-12-05 graph) or a .keras classifier file for IS/FID.",
    "feature_layer": "Feature layer name of a --classifier .keras model.",
    "inception_path": "classify_image_graph_def.pb or inception-2015-12-05.tgz.",
    "fid_stats": "Reference statistics .npz (TTUR format); default: computed from --dataset.",
    "on_bad_image": "'error' stops at an unreadable image, 'skip' skips it with a warning.",
    "jit_compile": "Compile the training step with XLA.",
    "precision": "float32, or bfloat16 compute with float32 variables, losses and spectral "
                 "norms (about 1.7-2x faster on CPUs with AVX-512 bf16 or AMX, and on TPUs/GPUs "
                 "with bf16 units; see the README's Performance section).",
    "max_nan_restores": "Restores of the last good checkpoint after NaN/Inf before stopping.",
}


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
