"""autogan-export: write a trained generator as a versioned SavedModel for TF Serving.

    autogan-export --model_dir=/tmp/train_a --export_dir=/tmp/export/autogan --version=1

Prints one line: the checkpoint exported, its weights (EMA or raw), the precision and the
version directory written.
"""

from absl import flags

from autogan_tf.cli import common

FLAGS = flags.FLAGS
common.define_runtime_flags()
flags.DEFINE_string("model_dir", None, "Training run directory (autogan-train --model_dir).")
flags.DEFINE_string("export_dir", None, "Model base directory; the version goes below it.")
flags.DEFINE_integer("version", 1, "Model version (a positive integer).")
common.define_generator_flags("export")
flags.DEFINE_integer("max_batch", 256, "Largest batch / num_samples a request may ask for.")
flags.DEFINE_integer("warmup_requests", 3, "PredictionLog warmup records per signature.")
flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"],
                  "Compute dtype of the exported graph (variables stay float32): bfloat16 "
                  "samples about 2x faster on CPUs with AVX-512 bf16/AMX; images differ from "
                  "float32 by a few uint8 levels.")
flags.DEFINE_bool("overwrite", False, "Replace an existing version directory.")
flags.mark_flags_as_required(["model_dir", "export_dir"])


def main(argv):
    """Restore the run's generator and export it (`serving.export.export_generator`).

    Args:
      argv: the program name, as absl passes it (the command takes no positional arguments).
    """
    common.apply_runtime_flags()
    from autogan_tf import models, training
    from autogan_tf.serving import export

    generator, _, checkpoint = training.restore_generator(
        FLAGS.model_dir, FLAGS.checkpoint, ema=FLAGS.generator == "ema")
    models.set_precision(generator, FLAGS.precision)
    path = export.export_generator(generator, FLAGS.export_dir, FLAGS.version,
                                   max_batch=FLAGS.max_batch,
                                   warmup_requests=FLAGS.warmup_requests,
                                   overwrite=FLAGS.overwrite)
    weights = "EMA" if FLAGS.generator == "ema" else "raw"
    print(f"exported {checkpoint} ({weights} weights, {generator.precision}) to {path}")


def run():
    """Console script `autogan-export`: parse its flags and run `main` (`common.run`)."""
    common.run(main)


if __name__ == "__main__":
    run()
