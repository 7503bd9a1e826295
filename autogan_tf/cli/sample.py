"""autogan-sample: images from an exported generator, via TF Serving or the SavedModel itself.

    autogan-sample --server=localhost:8500 --protocol=grpc --num_samples=64 --output_dir=/tmp/s
    autogan-sample --server=localhost:8501 --protocol=rest --model_name=autogan ...
    autogan-sample --saved_model=/tmp/export/autogan --seed=3 ...

Writes one PNG per image (``sample_<seed>_<i>.png``, the bytes the model
encodes) and a grid (``sample_<seed>_grid.png``). The same seed gives the same
images whichever way they are served.
"""

import sys

from absl import app, flags

from autogan_tf.cli import common

FLAGS = flags.FLAGS
common.define_runtime_flags()
flags.DEFINE_string("server", None, "TF Serving HOST:PORT (gRPC usually 8500, REST 8501).")
flags.DEFINE_enum("protocol", "grpc", ["grpc", "rest"], "How to talk to --server.")
flags.DEFINE_string("model_name", "autogan", "Model name on the server (--model_name of TF Serving).")
flags.DEFINE_integer("model_version", None, "Pin a model version on the server (default: newest).")
flags.DEFINE_string("saved_model", None,
                    "Run an export directory (or one version of it) in-process instead of --server.")
flags.DEFINE_integer("num_samples", 16, "How many images (at most the export's --max_batch).")
flags.DEFINE_integer("seed", 0, "Seed of the latent vectors; same seed, same images.")
flags.DEFINE_string("output_dir", "samples", "Where to write the PNGs.")
flags.DEFINE_integer("nrow", 8, "Images per row of the grid.")
flags.DEFINE_float("timeout", 60.0, "Seconds to wait for the server.")


def make_predictor():
    from autogan_tf import serving

    if (FLAGS.server is None) == (FLAGS.saved_model is None):
        raise app.UsageError("give exactly one of --server=HOST:PORT or --saved_model=DIR")
    if FLAGS.saved_model is not None:
        return serving.LocalGenerator(FLAGS.saved_model)
    try:
        return serving.PredictClient(FLAGS.server, FLAGS.protocol, FLAGS.model_name,
                                     version=FLAGS.model_version, timeout=FLAGS.timeout)
    except ValueError as e:
        raise app.UsageError(str(e))


def main(argv):
    common.apply_runtime_flags()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.nrow < 1:
        raise app.UsageError(f"--nrow must be >= 1, got {FLAGS.nrow}")
    from autogan_tf import export, serving

    try:
        predictor = make_predictor()
        written = serving.write_samples(predictor, FLAGS.num_samples, FLAGS.seed,
                                        FLAGS.output_dir, FLAGS.nrow)
    except (serving.RequestError, export.ExportError) as e:
        raise app.UsageError(str(e))
    except serving.ServingError as e:
        where = FLAGS.saved_model or f"{FLAGS.protocol}://{FLAGS.server}"
        # Not a flag problem: report the server's answer without the usage text.
        sys.exit(f"autogan-sample: {where} refused the request: {e}")
    print(f"wrote {len(written['images'])} images and {written['grid']}")


def run():
    common.run(main)


if __name__ == "__main__":
    run()
