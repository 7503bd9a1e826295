"""autogan-evaluate: Inception Score and FID of a trained generator.

    autogan-evaluate --model_dir=/tmp/train_a [--fid_stats=fid_stats_cifar10_train.npz]
                     [--num_samples=50000] [--classifier=inception|model.keras]
"""

import json
import os

from absl import app, flags

from autogan_tf.cli import common
from autogan_tf.config import IS_SPLITS

FLAGS = flags.FLAGS
common.define_runtime_flags()
flags.DEFINE_string("model_dir", None, "Training run directory (autogan-train --model_dir).")
common.define_generator_flags("evaluate")
flags.DEFINE_integer("num_samples", 50_000, "Generated images (paper: 50000).")
flags.DEFINE_integer("batch_size", 100, "Generation / feature batch size.")
flags.DEFINE_integer("seed", 0, "Seed of the evaluation noise.")
flags.DEFINE_string("classifier", None, "'inception' or a .keras file; default: the run's.")
flags.DEFINE_string("feature_layer", None, "Feature layer of a .keras classifier.")
flags.DEFINE_string("inception_path", None, "classify_image_graph_def.pb or the release .tgz.")
flags.DEFINE_string("fid_stats", None, "Reference statistics .npz; default: the run's.")
flags.DEFINE_string("output", None, "JSON output path (default MODEL_DIR/eval_<checkpoint>.json).")
flags.mark_flag_as_required("model_dir")


def main(argv):
    strategy = common.apply_runtime_flags(distributed=True)
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from autogan_tf import distribute, training
    from autogan_tf.metrics.evaluator import Evaluator

    if FLAGS.num_samples < IS_SPLITS:
        raise app.UsageError(f"--num_samples must be at least {IS_SPLITS} ({IS_SPLITS} IS splits)")
    try:
        generator, config, checkpoint = training.restore_generator(
            FLAGS.model_dir, FLAGS.checkpoint, ema=FLAGS.generator == "ema")
    except training.TrainingError as e:
        raise app.UsageError(str(e))
    fid_stats = FLAGS.fid_stats or config.fid_stats
    cached = os.path.join(FLAGS.model_dir, "fid_stats.npz")
    classifier = FLAGS.classifier or config.classifier
    if not fid_stats and os.path.exists(cached) and classifier == config.classifier:
        fid_stats = cached
    evaluator = Evaluator(classifier, FLAGS.feature_layer or config.feature_layer,
                          FLAGS.inception_path or config.inception_path, fid_stats,
                          config.dataset, config.image_size, config.data_dir,
                          FLAGS.model_dir, FLAGS.batch_size, strategy=strategy)
    # Sampling and features are split across the replicas (and workers) and gathered.
    result = evaluator(generator, FLAGS.num_samples, seed=FLAGS.seed)
    result.update({"checkpoint": checkpoint, "generator": FLAGS.generator, "seed": FLAGS.seed, "arch": config.arch,
                   "replicas": strategy.num_replicas_in_sync})
    output = FLAGS.output or os.path.join(FLAGS.model_dir, f"eval_{FLAGS.checkpoint}.json")
    if distribute.is_chief():  # the other workers computed the same numbers
        with open(output, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    print(json.dumps(result))


def run():
    common.run(main)


if __name__ == "__main__":
    run()
