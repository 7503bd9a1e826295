"""autogan-fid: Frechet distance between two image sets or statistics files.

    autogan-fid fid_stats_cifar10_train.npz my_stats.npz
    autogan-fid folder:/tmp/samples fid_stats_cifar10_train.npz [--json]
    autogan-fid shapes stats.npz --classifier=clf.keras

Each argument is a statistics .npz (TTUR format: ``mu`` and ``sigma``) or a
``--dataset``-style value (cifar10, stl10, shapes, folder:PATH) whose
statistics are computed on the fly with --classifier, like TTUR's
``fid.py path1 path2``.
"""

import json
import os

from absl import app, flags

from autogan_tf.cli import common

FLAGS = flags.FLAGS
common.define_runtime_flags()
flags.DEFINE_string("classifier", "inception",
                    "'inception' (2015-12-05 graph) or a .keras classifier whose output is logits.")
flags.DEFINE_string("feature_layer", None, "Feature layer of a .keras --classifier.")
flags.DEFINE_integer("num_samples", None, "Images per data set argument (default: all of --split).")
flags.DEFINE_string("split", "train", "Split of data set arguments: train or test.")
flags.DEFINE_integer("batch_size", 100, "Images per forward pass.")
flags.DEFINE_integer("image_size", None, "Resolution of data set arguments (default: their own).")
flags.DEFINE_string("data_dir", None, "tensorflow-datasets data directory.")
flags.DEFINE_string("inception_path", None,
                    "classify_image_graph_def.pb or inception-2015-12-05.tgz (default: cache/download).")
flags.DEFINE_bool("json", False, "Print one JSON object with key 'fid' instead of text.")


def _is_statistics_file(arg):
    return arg.endswith(".npz")


def _statistics(arg, get_extractor):
    from autogan_tf.metrics import evaluate, scores

    if _is_statistics_file(arg):
        stats = scores.load_statistics(arg)
        return stats
    extractor = get_extractor()
    return evaluate.dataset_statistics(
        arg, extractor, split=FLAGS.split, batch_size=FLAGS.batch_size,
        num_samples=FLAGS.num_samples, image_size=FLAGS.image_size, data_dir=FLAGS.data_dir,
        progress=arg)


def compute(first, second):
    """FID between two arguments (statistics files or data sets), as a dict."""
    from autogan_tf.metrics import classifiers, evaluate

    cache = {}

    def get_extractor():
        if "x" not in cache:
            cache["x"] = classifiers.load_feature_extractor(
                FLAGS.classifier, FLAGS.feature_layer, FLAGS.inception_path, FLAGS.image_size)
        return cache["x"]

    both = [_statistics(arg, get_extractor) for arg in (first, second)]
    if "x" in cache:  # a data set was embedded: files must come from the same network
        for arg, stats in zip((first, second), both):
            evaluate.check_compatible(stats, cache["x"], where=arg)
    else:
        names = [s.classifier or "inception" for s in both]
        if names[0] != names[1]:
            from autogan_tf.metrics.scores import StatsError
            raise StatsError(f"{first} was computed with '{names[0]}' but {second} with "
                             f"'{names[1]}'; FID needs features of the same network")
    return {"fid": both[0].fid(both[1]), "a": first, "b": second,
            "classifier": both[0].classifier or "inception",
            "num_samples": [s.num_samples for s in both]}


def main(argv):
    common.apply_runtime_flags()
    if len(argv) != 3:
        raise app.UsageError("give exactly two arguments: statistics .npz files or data sets "
                             "(cifar10, stl10, shapes, folder:PATH)")
    from autogan_tf import data
    from autogan_tf.metrics import classifiers, inception, scores

    first, second = argv[1:]
    for arg in (first, second):
        if _is_statistics_file(arg):
            if not os.path.isfile(arg):
                raise app.UsageError(f"statistics file not found: {arg}")
        else:
            try:
                data.parse_dataset(arg)
            except data.DataError as e:
                raise app.UsageError(f"{arg}: not a .npz statistics file and {e}")
    try:
        result = compute(first, second)
    except (data.DataError, classifiers.ClassifierError, inception.InceptionUnavailableError,
            inception.InceptionGraphError, scores.StatsError) as e:
        raise app.UsageError(str(e))
    if FLAGS.json:
        print(json.dumps(result))
    else:
        print(f"FID: {result['fid']:.4f}")


def run():
    common.run(main)


if __name__ == "__main__":
    run()
