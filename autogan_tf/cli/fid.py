"""autogan-fid: Frechet distance (and KID) between two image sets or statistics files.

    autogan-fid fid_stats_cifar10_train.npz my_stats.npz
    autogan-fid folder:/tmp/samples fid_stats_cifar10_train.npz [--json]
    autogan-fid shapes stats.npz --classifier=clf.keras

Each argument is a statistics .npz (TTUR format: ``mu`` and ``sigma``) or a
``--dataset``-style value (cifar10, stl10, shapes, folder:PATH) whose
statistics are computed on the fly with --classifier, like TTUR's
``fid.py path1 path2``.

Prints ``FID: <value>`` and ``KID: <mean> +- <std>``, or with --json one JSON line:
``fid``, ``kid_mean``, ``kid_std``, ``a``, ``b``, ``classifier`` and ``num_samples`` (of
each side; None for a statistics file without it). KID needs the features a statistics file
keeps (``autogan-fid-stats`` writes them; TTUR's files and older ones have none: KID is
then not computed, None in the JSON).
"""

import json

from absl import flags

from autogan_tf import errors
from autogan_tf.cli import common

FLAGS = flags.FLAGS
common.define_runtime_flags()
common.define_feature_flags("each data set argument")
flags.DEFINE_bool("json", False, "Print one JSON object with key 'fid' instead of text.")
flags.DEFINE_bool("kid", True, "Also compute the kernel inception distance (KID; about half "
                               "a minute with Inception features on two CPU cores).")


def main(argv):
    """Compute the FID and KID between the two arguments (`metrics.streaming.fid_between`).

    Args:
      argv: the program name and the two sources left after the flags.

    Raises:
      errors.UserError: not exactly two sources.
    """
    common.apply_runtime_flags()
    if len(argv) != 3:
        raise errors.UserError("give exactly two arguments: statistics .npz files or data sets "
                               "(cifar10, stl10, shapes, folder:PATH)")
    from autogan_tf.metrics import streaming

    result = streaming.fid_between(
        argv[1], argv[2], classifier=FLAGS.classifier, feature_layer=FLAGS.feature_layer,
        inception_path=FLAGS.inception_path, image_size=FLAGS.image_size, split=FLAGS.split,
        batch_size=FLAGS.batch_size, num_samples=FLAGS.num_samples, data_dir=FLAGS.data_dir,
        kid=FLAGS.kid)
    if FLAGS.json:
        print(json.dumps(result))
    else:
        print(f"FID: {result['fid']:.4f}")
        if result["kid_mean"] is None and FLAGS.kid:
            print("KID: not computed (a statistics file keeps no features: rewrite it with "
                  "autogan-fid-stats)")
        elif result["kid_mean"] is not None:
            print(f"KID: {result['kid_mean']:.6f} +- {result['kid_std']:.6f}")


def run():
    """Console script `autogan-fid`: parse its flags and run `main` (`common.run`)."""
    common.run(main, num_args=None)


if __name__ == "__main__":
    run()
