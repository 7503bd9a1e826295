"""autogan-evaluate: Inception Score, FID and KID of a trained generator.

    autogan-evaluate --model_dir=/tmp/train_a [--fid_stats=fid_stats_cifar10_train.npz]
                     [--num_samples=50000] [--classifier=inception|model.keras]

Prints the scores as one JSON line (``is_mean``, ``is_std``, ``fid``, ``kid_mean``,
``kid_std``, ``num_samples``, ``classifier``, ``checkpoint``, ``generator``, ``seed``,
``arch``, ``replicas``), also written to --output (default MODEL_DIR/eval_<checkpoint>.json).
KID is null when the reference statistics keep no features (TTUR's files, older ones).
A --conditional run adds ``class_accuracy`` (when the classifier has its classes), and with
--intra_fid ``intra_fid`` and ``intra_fid_per_class``.
"""

import json

from absl import flags

from autogan_tf.cli import common

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
flags.DEFINE_boolean("intra_fid", False, "A --conditional run only: also intra-FID, the mean "
                     "over classes of the FID between num_samples/classes images asked for a "
                     "class and that class's real training images.")
flags.mark_flag_as_required("model_dir")


def main(argv):
    """Score the run's generator (`training.evaluate_run`) and print the result as JSON.

    Args:
      argv: the program name, as absl passes it (the command takes no positional arguments).
    """
    strategy = common.apply_runtime_flags(distributed=True)
    from autogan_tf import training

    # Sampling and features are split across the replicas (and workers) and gathered.
    result = training.evaluate_run(
        FLAGS.model_dir, FLAGS.checkpoint, ema=FLAGS.generator == "ema",
        num_samples=FLAGS.num_samples, batch_size=FLAGS.batch_size, seed=FLAGS.seed,
        classifier=FLAGS.classifier, feature_layer=FLAGS.feature_layer,
        inception_path=FLAGS.inception_path, fid_stats=FLAGS.fid_stats, output=FLAGS.output,
        strategy=strategy, intra_fid=FLAGS.intra_fid)
    print(json.dumps(result))


def run():
    """Console script `autogan-evaluate`: parse its flags and run `main` (`common.run`)."""
    common.run(main)


if __name__ == "__main__":
    run()
