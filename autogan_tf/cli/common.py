"""What every autogan-* command line shares: its entry point, error report and common flags.

A command module defines its flags, a ``main(argv)`` that makes one call into
the library and prints the result, and ``run = lambda: common.run(main)``.
Errors are not caught in the commands: `run` turns any `errors.AutoganError`
into one line on stderr (see `report_errors`).
"""

import functools
import os
import sys

from absl import flags

from autogan_tf import errors

# The flags the helpers below define belong to the command that calls them: they are
# listed by its --help like the flags it defines itself.
flags.disclaim_key_flags()

# sysexits.h EX_TEMPFAIL: "try again later". A run stopped by SIGTERM/SIGINT after
# checkpointing exits with it, so Slurm (--requeue) or a Kubernetes Job retries it.
EX_TEMPFAIL = 75


def resolve_flagfiles(argv):
    """Replace each ``--flagfile=X`` naming a shipped flagfile by its installed path.

    Where no file X exists, X (or its base name, minus ``.cfg``) names a shipped flagfile,
    so ``--flagfile=search_cifar10`` works from any directory and after ``pip install``.

    Args:
      argv: the command line, ``argv[0]`` being the program.

    Returns:
      The command line with those values resolved; other arguments are unchanged.

    Raises:
      SystemExit: a ``--flagfile`` value that is neither a file nor a shipped flagfile
        (one line naming the shipped ones).
    """
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


def command_name(module_name: str) -> str:
    """The console script of a command module: ``autogan_tf.cli.fid_stats`` -> ``autogan-fid-stats``.

    Args:
      module_name: the module's ``__name__`` (or, run with ``python -m``, its spec's name).

    Returns:
      The name a user types, used to begin every line the command reports.
    """
    short = module_name.rsplit(".", 1)[-1]
    short = {"import_checkpoint": "import"}.get(short, short)
    return "autogan-" + short.replace("_", "-")


def _module_of(main) -> str:
    """The dotted name of the module defining ``main``, also when it runs as ``__main__``."""
    name = main.__module__
    if name == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        name = spec.name if spec else os.path.splitext(os.path.basename(sys.argv[0]))[0]
    return name


def report_errors(main, command: str, num_args: int | None = 0):
    """``main`` wrapped so that an error raised on purpose ends the command in one line.

    Args:
      main: the command's ``main(argv)``.
      command: its name (`command_name`), the first word of the line.
      num_args: positional arguments it takes after the flags (None: ``main`` checks them).

    Returns:
      A ``main(argv)`` for ``app.run``. Any `errors.AutoganError` (a `errors.UserError`
      such as a bad flag value or file, or a run that failed, such as losses that stayed
      NaN) exits with ``<command>: error: <message>`` on stderr, without traceback or
      usage text: the message names the flag or file. The exit status is the error's
      ``exit_status`` when it has one (73: another process holds the run directory), 1
      otherwise. Other exceptions are
      bugs and keep their traceback. ``SystemExit`` (e.g. exit status 75 of a
      preempted run) passes through.

    Raises:
      SystemExit: from ``checked_main``, for an `errors.AutoganError` or unexpected
        positional arguments.
    """

    @functools.wraps(main)
    def checked_main(argv):
        try:
            if num_args is not None and len(argv) - 1 != num_args:
                raise errors.UserError(f"unexpected arguments: {argv[1:]}")
            return main(argv)
        except errors.AutoganError as e:
            sys.stdout.flush()
            status = getattr(e, "exit_status", 1)
            if status == 1:
                raise SystemExit(f"{command}: error: {e}") from None
            print(f"{command}: error: {e}", file=sys.stderr, flush=True)
            raise SystemExit(status) from None

    return checked_main


def run(main, num_args: int | None = 0):
    """Entry point of a command line: resolve shipped flagfiles, parse flags, run ``main``.

    Args:
      main: the command's ``main(argv)``; ``argv[0]`` is the program, the rest are
        positional arguments left after the flags.
      num_args: how many positional arguments ``main`` takes (None: it checks them).
    """
    from absl import app

    _list_in_help(main.__module__)
    sys.argv = resolve_flagfiles(sys.argv)
    app.run(report_errors(main, command_name(_module_of(main)), num_args))


def _list_in_help(module_name: str):
    """Make ``--help`` list the command's own flags.

    absl's ``--help`` shows the key flags of the module named by ``sys.argv[0]``;
    an installed console script (``autogan-train``) is a wrapper whose path is not
    the command's module, so the module's flags are registered for it too.
    """
    if module_name == "__main__":  # ``python -m``: absl already files them under argv[0]
        return
    for flag in flags.FLAGS.get_key_flags_for_module(module_name):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def exit_if_preempted(result, command: str):
    """After a job returned ``{"preempted": True, ...}``: exit with `EX_TEMPFAIL`.

    A job scheduler can then tell "stopped by a signal, rerun to resume" from a failure.

    Args:
      result: the dict the job (search, training, ...) returned.
      command: the command's name, for the message on stderr.

    Raises:
      SystemExit: with status `EX_TEMPFAIL` when ``result["preempted"]`` is true.
    """
    if result.get("preempted"):
        print(f"{command}: stopped by a signal after checkpointing; rerun the same command to "
              f"resume (exit status {EX_TEMPFAIL})", file=sys.stderr)
        sys.stdout.flush()
        raise SystemExit(EX_TEMPFAIL)


def parse_arch_flag(value, flag: str = "--arch"):
    """An architecture flag's value as a `search_space.Arch`.

    Args:
      value: an alias, a vector such as ``'1 0 1 1'``, or a JSON file.
      flag: the flag it came from, put in front of the message of a bad value.

    Returns:
      The parsed `search_space.Arch`; a bad value raises `search_space.ArchError`
      (a user error) whose message begins with ``flag``.
    """
    from autogan_tf import search_space

    try:
        return search_space.parse_arch(value)
    except search_space.ArchError as e:
        raise search_space.ArchError(f"{flag}: {e}") from None



def define_run_dir_flags(contents: str):
    """``--model_dir`` (required) and ``--min_free_mb``: where a job writes, and the room it needs.

    Args:
      contents: what the directory holds, for ``--model_dir``'s help text.
    """
    flags.DEFINE_string("model_dir", None, f"Directory for {contents}.")
    flags.DEFINE_float("min_free_mb", 200.0, "Refuse to start when the file system of "
                       "--model_dir has less free space than this (MB): checkpoints and logs "
                       "need room.")
    flags.mark_flag_as_required("model_dir")


def define_generator_flags(verb: str):
    """``--checkpoint`` (latest/best) and ``--generator`` (ema/raw): which trained G to ``verb``.

    Args:
      verb: what the command does with the generator (``"evaluate"``), in the help text.
    """
    flags.DEFINE_enum("checkpoint", "latest", ["latest", "best"], f"Which checkpoint to {verb}.")
    flags.DEFINE_enum("generator", "ema", ["ema", "raw"],
                      "ema: the moving average of G's weights (the paper's choice); raw: the "
                      "weights the last G step left.")


def define_feature_flags(images: str):
    """Flags of the network that embeds real images for FID statistics, and of which images.

    Args:
      images: what the images are, in the help texts (``"--dataset"``, ``"each data set
        argument"``).

    Shared by autogan-fid-stats and autogan-fid, so the two embed a data set alike.
    """
    flags.DEFINE_string("classifier", "inception", "'inception' (2015-12-05 graph) or a .keras "
                        "classifier whose output is logits.")
    flags.DEFINE_string("feature_layer", None,
                        "Layer of a .keras --classifier whose output is the feature vector "
                        "(default: the input of its last layer).")
    flags.DEFINE_integer("num_samples", None,
                         f"Use only this many images of {images} (default: all of --split).")
    flags.DEFINE_string("split", "train", f"Split of {images}: train or test.")
    flags.DEFINE_integer("batch_size", 100, "Images per forward pass.")
    flags.DEFINE_integer("image_size", None,
                         f"Resolution of {images} (default: the data set's own).")
    flags.DEFINE_string("data_dir", None, "tensorflow-datasets data directory.")
    flags.DEFINE_string("inception_path", None, "classify_image_graph_def.pb or "
                        "inception-2015-12-05.tgz (default: cache/download).")


def host_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def define_runtime_flags(small_models: bool = False):
    """Flags of how TensorFlow uses this host, shared by every command that computes.

    Args:
      small_models: the command trains only small models (the quick start): by default two
        ops run at once on half the cores each, rather than one op on every core. Convolutions
        of 16-64 channels at 16 px do not spread over cores, while a GAN step has independent
        ops (D on real and on fake images, spectral-norm power iterations): on 2 cores the
        quick start's training ran 1.45x faster with 2 x 1 threads than with 1 x 2.
    """
    inter_default, intra_default = (2, max(1, host_cores() // 2)) if small_models else (-1, 0)
    flags.DEFINE_integer(
        "inter_op_threads", inter_default,
        "TensorFlow ops run at the same time: -1 = 1 on a host without GPUs (each convolution "
        "already uses every core through oneDNN; measured 2% faster on 2 cores) and "
        "TensorFlow's default with GPUs; 0 = TensorFlow's default."
        + (" This command's models are small: 2 by default." if small_models else ""))
    flags.DEFINE_integer(
        "intra_op_threads", intra_default,
        "Threads one op may use (0: TensorFlow's default, all cores)."
        + (" This command's default: half the cores." if small_models else ""))
    flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                      "tf.distribute strategy: default (one device), mirrored (this host's "
                      "GPUs, or --cpu_devices logical CPUs) or multi_worker (several hosts, "
                      "configured by the TF_CONFIG environment variable; see the README). "
                      "Batch sizes are global.")
    flags.DEFINE_enum("sync_bn", "auto", ["auto", "true", "false"],
                      "Batch norm in G over the global batch (synchronised across replicas): "
                      "auto = on whenever there is more than one replica.")
    flags.DEFINE_float("collective_timeout", 300.0,
                       "--strategy=multi_worker: seconds a collective waits for the other "
                       "workers before the job stops (exit status 75, rerun every worker to "
                       "resume); 0: wait forever.")
    flags.DEFINE_integer("cpu_devices", 0,
                         "Split the host CPU into N logical devices for --strategy=mirrored "
                         "(to try data parallelism without GPUs; 0: do not split).")


def apply_runtime_flags(values=None, distributed=False):
    """Configure TensorFlow from the runtime flags; first thing in ``main``.

    Also applies the quiet logging defaults (`output.configure`) now that flags are parsed.

    Args:
      values: the parsed flags (default: ``absl.flags.FLAGS``), with the flags of
        `define_runtime_flags`.
      distributed: whether the command can run under a strategy other than the default.

    Returns:
      The `tf.distribute` strategy of ``--strategy``.

    Raises:
      errors.UserError: ``--strategy`` other than default for a command that cannot use it.
      distribute.DistributeError: the strategy cannot be built (see
        `distribute.make_strategy`, `distribute.configure_threads`).
    """
    from autogan_tf import distribute
    from autogan_tf.cli import output

    output.configure()
    values = values or flags.FLAGS
    distribute.configure_threads(values.inter_op_threads, values.intra_op_threads)
    if not distributed and values.strategy != "default":
        raise errors.UserError(f"--strategy={values.strategy} is not supported by this command; "
                               "use it with autogan-search, autogan-train, autogan-evaluate or "
                               "autogan-fid-stats")
    return distribute.make_strategy(values.strategy, values.cpu_devices,
                                    values.collective_timeout)


def sync_bn(values, strategy) -> bool:
    """``--sync_bn``: auto means synchronised batch norm with more than one replica.

    Args:
      values: the parsed flags, with ``sync_bn`` ("auto", "true" or "false").
      strategy: the command's `tf.distribute` strategy.

    Returns:
      Whether G's batch norm should be synchronised across replicas.
    """
    if values.sync_bn == "auto":
        return strategy.num_replicas_in_sync > 1
    return values.sync_bn == "true"
