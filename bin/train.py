"""autogan-train: train a derived AutoGAN architecture from scratch.

    autogan-train --arch="1 0 1 1 1 0 0 1 1 1 0 1 0 3" --model_dir=/tmp/train_a
    autogan-train --search_result=/tmp/s/search_result.json --rank=0 --model_dir=...
    autogan-train --flagfile=flags/train_cifar10_a.cfg --model_dir=...

Rerunning the same command resumes from the latest checkpoint in --model_dir.
"""

import json

from absl import app, flags

from autogan_tf import search_space as ss
from autogan_tf.training import TrainConfig
from bin import common

FLAGS = flags.FLAGS
common.define_dataclass_flags(TrainConfig, common.TRAIN_HELPS)
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, logs and samples.")
flags.DEFINE_string("search_result", None, "search_result.json of autogan-search; use with --rank.")
flags.DEFINE_integer("rank", 0, "Which of the search result's top architectures (0 = best).")
flags.mark_flag_as_required("model_dir")


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
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from autogan_tf import training

    overrides = {}
    if FLAGS.search_result:
        overrides["arch"] = arch_from_search_result(FLAGS.search_result, FLAGS.rank)
    try:
        config = common.dataclass_from_flags(TrainConfig, FLAGS, **overrides)
    except ss.ArchError as e:
        raise app.UsageError(f"--arch: {e}")
    except ValueError as e:
        raise app.UsageError(str(e))
    config.classifier = common.resolve_classifier(config.classifier, config.dataset,
                                                  FLAGS.model_dir, config.data_dir)
    result = training.train(config, FLAGS.model_dir)
    print(json.dumps(result))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
