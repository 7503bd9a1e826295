"""autogan-fid-stats: FID/KID reference statistics (mu, sigma, features) of a data set's images.

    autogan-fid-stats --dataset=cifar10 --output=fid_stats_cifar10_train.npz
    autogan-fid-stats --dataset=stl10 --output=fid_stats_stl10.npz          # train+unlabelled, 48x48
    autogan-fid-stats --dataset=folder:/data/cifar10 --classifier=clf.keras --output=stats.npz

The .npz has TTUR's keys ``mu`` and ``sigma`` (so TTUR's fid.py reads it) plus
``classifier``, ``num_samples``, ``resolution`` and ``features``: a uniform sample of up
to 10,000 of the images' features, for KID. The paper's protocol is
the CIFAR-10 training set, and STL-10 train+unlabelled at 48x48.

Prints one JSON line: ``output``, ``dataset``, ``split``, ``classifier``, ``num_samples``,
``resolution``, ``feature_dim``, ``kid_features`` (features kept for KID), ``replicas``
and ``seconds``.
"""

import json
import time

from absl import flags

from autogan_tf import errors
from autogan_tf.cli import common

FLAGS = flags.FLAGS
common.define_runtime_flags()
flags.DEFINE_string("dataset", None, "cifar10, stl10, shapes or folder:PATH.")
flags.DEFINE_string("output", None, "Where to write the statistics .npz.")
common.define_feature_flags("--dataset")
flags.mark_flags_as_required(["dataset", "output"])


def main(argv):
    """Embed the data set's images and write their statistics (on the chief only).

    Args:
      argv: the program name, as absl passes it (the command takes no positional arguments).
    """
    strategy = common.apply_runtime_flags(distributed=True)
    from autogan_tf import data, distribute
    from autogan_tf.metrics import classifiers, scores, streaming

    if FLAGS.num_samples is not None and FLAGS.num_samples < 2:
        raise errors.UserError("--num_samples must be at least 2")
    start = time.time()
    data.parse_dataset(FLAGS.dataset)
    extractor = classifiers.load_feature_extractor(
        FLAGS.classifier, FLAGS.feature_layer, FLAGS.inception_path, FLAGS.image_size)
    # Every worker reads the same batches; each replica extracts its slice, gathered.
    stats = streaming.dataset_statistics(
        FLAGS.dataset, distribute.split_extractor(extractor, strategy), split=FLAGS.split,
        batch_size=FLAGS.batch_size, num_samples=FLAGS.num_samples, image_size=FLAGS.image_size,
        data_dir=FLAGS.data_dir, progress=f"{FLAGS.dataset} {FLAGS.split}")
    if distribute.is_chief():
        scores.save_statistics(FLAGS.output, stats)
    print(json.dumps({"output": FLAGS.output, "dataset": FLAGS.dataset, "split": FLAGS.split,
                      "classifier": stats.classifier, "num_samples": stats.num_samples,
                      "resolution": stats.resolution, "feature_dim": int(stats.mu.shape[0]),
                      "kid_features": len(stats.features),
                      "replicas": strategy.num_replicas_in_sync,
                      "seconds": round(time.time() - start, 1)}))


def run():
    """Console script `autogan-fid-stats`: parse its flags and run `main` (`common.run`)."""
    common.run(main)


if __name__ == "__main__":
    run()
