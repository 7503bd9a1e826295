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
HELPS = {
    "arch": "Architecture: alias (autogan_cifar10_a), vector '1 0 1 1 ...', or JSON file.",
    "dataset": "cifar10, stl10, shapes (built in) or folder:PATH.",
    "data_dir": "tensorflow-datasets data directory.",
    "max_iters": "Generator iterations (each is n_critic D steps + 1 G step).",
    "lr_decay": "Linear learning-rate decay to 0 over max_iters (the paper's run: off).",
    "ema_decay": "Decay of the exponential moving average of G's weights used for eval/export.",
    "save_every": "Checkpoint every N generator iterations (0: only at the end).",
    "eval_every": "Evaluate IS/FID every N generator iterations (0: never).",
    "eval_num_samples": "Samples per evaluation (paper: 50000).",
    "classifier": "'inception' (2015-12-05 graph) or a .keras classifier file for IS/FID.",
    "feature_layer": "Feature layer name of a --classifier .keras model.",
    "inception_path": "classify_image_graph_def.pb or inception-2015-12-05.tgz.",
    "fid_stats": "Reference statistics .npz (TTUR format); default: computed from --dataset.",
    "on_bad_image": "'error' stops at an unreadable image, 'skip' skips it with a warning.",
    "jit_compile": "Compile the training step with XLA.",
}
common.define_dataclass_flags(TrainConfig, HELPS)
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
