"""autogan-train: train a derived AutoGAN architecture from scratch.

    autogan-train --arch="1 0 1 1 1 0 0 1 1 1 0 1 0 3" --model_dir=/tmp/train_a
    autogan-train --search_result=/tmp/s/search_result.json --rank=0 --model_dir=...
    autogan-train --flagfile=flags/train_cifar10_a.cfg --model_dir=...

Rerunning the same command resumes from the latest checkpoint in --model_dir.
"""

import json

from absl import app, flags

from autogan_tf import search_space as ss
from autogan_tf import config as config_lib
from autogan_tf.cli import common
from autogan_tf.config import TrainConfig

FLAGS = flags.FLAGS
common.define_runtime_flags()
config_lib.define_flags(TrainConfig)
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, logs and samples.")
flags.DEFINE_string("search_result", None, "search_result.json of autogan-search; use with --rank.")
flags.DEFINE_integer("rank", 0, "Which of the search result's top architectures (0 = best).")
flags.DEFINE_float("min_free_mb", 200.0, "Refuse to start when the file system of --model_dir "
                   "has less free space than this (MB): checkpoints and logs need room.")
flags.mark_flag_as_required("model_dir")


def user_errors():
    """Errors that mean "fix a flag, a file or the disk": printed as one line, exit status 1."""
    from autogan_tf import data, runlog, training
    from autogan_tf.metrics import classifiers, inception, scores

    return (training.TrainingError, runlog.ModelDirError, runlog.CheckpointError, ss.ArchError,
            data.DataError, classifiers.ClassifierError, scores.StatsError,
            inception.InceptionUnavailableError, inception.InceptionGraphError)


def arch_from_search_result(path, rank):
    try:
        with open(path, encoding="utf-8") as f:
            result = json.load(f)
        top = result["top_archs"]
    except (OSError, ValueError, KeyError) as e:
        raise app.UsageError(f"--search_result={path}: cannot read top_archs ({e})")
    if not 0 <= rank < len(top):
        raise app.UsageError(f"--rank={rank} is out of range: {path} has {len(top)} architectures")
    return str(ss.parse_arch(top[rank]["arch"]))


def main(argv):
    strategy = common.apply_runtime_flags(distributed=True)
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from autogan_tf import runlog, training

    overrides = {}
    if FLAGS.search_result:
        overrides["arch"] = arch_from_search_result(FLAGS.search_result, FLAGS.rank)
    try:
        config = config_lib.from_flags(TrainConfig, FLAGS, **overrides)
    except ss.ArchError as e:
        raise app.UsageError(f"--arch: {e}")
    except ValueError as e:
        raise app.UsageError(str(e))
    try:
        # Before any work (training an 'auto' classifier, hours of training): the directory
        # must be usable and not hold a run of another configuration.
        runlog.check_writable(FLAGS.model_dir, min_free_mb=FLAGS.min_free_mb)
        training.check_model_dir_config(FLAGS.model_dir, config)
        config.classifier = common.resolve_classifier(config.classifier, config.dataset,
                                                      FLAGS.model_dir, config.data_dir)
        result = training.train(config, FLAGS.model_dir, min_free_mb=FLAGS.min_free_mb,
                                strategy=strategy, sync_bn=common.sync_bn(FLAGS, strategy))
    except user_errors() as e:
        raise SystemExit(f"autogan-train: error: {e}") from None
    print(json.dumps(result))
    common.exit_if_preempted(result, "autogan-train")


def run():
    common.run(main)


if __name__ == "__main__":
    run()
