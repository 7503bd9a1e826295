"""autogan-sample: images from an exported generator, via TF Serving or the SavedModel itself.

    autogan-sample --server=localhost:8500 --protocol=grpc --num_samples=64 --output_dir=/tmp/s
    autogan-sample --server=localhost:8501 --protocol=rest --model_name=autogan ...
    autogan-sample --saved_model=/tmp/export/autogan --seed=3 ...
    autogan-sample --saved_model=/tmp/export/autogan --labels=3,3,7   # a --conditional model

Writes one PNG per image (``sample_<seed>_<i>.png``, the bytes the model
encodes) and a grid (``sample_<seed>_grid.png``). The same seed gives the same
images whichever way they are served.

Prints one line: how many images were written and the grid's path.
"""

from absl import flags

from autogan_tf import errors
from autogan_tf.cli import common

FLAGS = flags.FLAGS
common.define_runtime_flags()
flags.DEFINE_string("server", None, "TF Serving HOST:PORT (gRPC usually 8500, REST 8501).")
flags.DEFINE_enum("protocol", "grpc", ["grpc", "rest"], "How to talk to --server.")
flags.DEFINE_string("model_name", "autogan", "Model name on the server (--model_name of TF Serving).")
flags.DEFINE_integer("model_version", None, "Pin a model version on the server (default: newest).")
flags.DEFINE_string("saved_model", None,
                    "Run an export directory (or one version of it) in-process instead of --server.")
flags.DEFINE_integer("num_samples", 16, "How many images (at most the export's --max_batch); "
                     "with --labels, as many as it names.")
flags.DEFINE_list("labels", None, "A --conditional model's class of each image, e.g. 3,3,7 "
                  "(-1: a random class). Unconditional models take none.")
flags.DEFINE_integer("seed", 0, "Seed of the latent vectors; same seed, same images.")
flags.DEFINE_string("output_dir", "samples", "Where to write the PNGs.")
flags.DEFINE_integer("nrow", 8, "Images per row of the grid.")
flags.DEFINE_float("timeout", 60.0, "Seconds to wait for the server.")


def main(argv):
    """Connect to the server or the SavedModel and write the samples (`serving.client.write_samples`).

    Args:
      argv: the program name, as absl passes it (the command takes no positional arguments).
    """
    common.apply_runtime_flags()
    from autogan_tf.serving import client

    predictor = client.connect(FLAGS.server, FLAGS.saved_model, FLAGS.protocol,
                                FLAGS.model_name, version=FLAGS.model_version,
                                timeout=FLAGS.timeout)
    labels = parse_labels(FLAGS.labels)
    num_samples = FLAGS.num_samples
    if labels is not None:
        if FLAGS["num_samples"].present and num_samples != len(labels):
            raise errors.UserError(f"--num_samples={num_samples} but --labels names "
                                   f"{len(labels)} classes: give one class per image")
        num_samples = len(labels)
    written = client.write_samples(predictor, num_samples, FLAGS.seed,
                                    FLAGS.output_dir, FLAGS.nrow, labels=labels)
    print(f"wrote {len(written['images'])} images and {written['grid']}")


def parse_labels(values):
    """``--labels`` as ints (None when not given).

    Args:
      values: the flag's list of strings.

    Raises:
      errors.UserError: an entry that is not an integer.
    """
    if not values:
        return None
    try:
        return [int(v) for v in values]
    except ValueError:
        raise errors.UserError(f"--labels={','.join(values)}: class indices are integers, "
                               "e.g. --labels=3,3,7") from None


def run():
    """Console script `autogan-sample`: parse its flags and run `main` (`common.run`)."""
    common.run(main)


if __name__ == "__main__":
    run()
