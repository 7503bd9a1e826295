"""autogan-import: turn an official AutoGAN PyTorch checkpoint into a run directory.

    autogan-import --checkpoint=autogan_cifar10_a.pth --arch=autogan_cifar10_a \\
                   --gf_dim=256 --model_dir=/tmp/autogan_a

The run directory is what ``autogan-evaluate``, ``autogan-export`` (and then
``autogan-sample --saved_model``) read. The file is read without PyTorch and
without running anything it contains: tensors, containers and numbers only.

Prints one line saying which weights of the file were imported (``avg_gen_state_dict``,
``gen_state_dict`` or the bare state dict), how many tensors, and into which directory.
"""

from absl import flags

from autogan_tf.cli import common

FLAGS = flags.FLAGS
common.define_runtime_flags()
flags.DEFINE_string("checkpoint", None,
                    "Official .pth file: a generator state dict, or a training checkpoint "
                    "holding avg_gen_state_dict (used if present) or gen_state_dict.")
flags.DEFINE_string("arch", None, "The official model's architecture: alias "
                    "(autogan_cifar10_a) or vector '1 0 1 1 ...' (its --gen_model / --arch).")
flags.DEFINE_integer("gf_dim", None, "The official --gf_dim (256 for the paper's models).")
flags.DEFINE_integer("bottom_width", 4, "The official --bottom_width: 4 for CIFAR-10 (32 px), "
                     "6 for the STL-10 model (48 px).")
flags.DEFINE_integer("latent_dim", 128, "The official --latent_dim.")
flags.DEFINE_string("model_dir", None, "Run directory to create (must not exist, or be empty).")
flags.DEFINE_string("dataset", None, "Data set recorded for evaluation without --fid_stats "
                    "(default: stl10 for 48 px images, else cifar10).")
flags.mark_flags_as_required(["checkpoint", "arch", "gf_dim", "model_dir"])


def main(argv):
    """Import the official checkpoint (`official.importer.import_checkpoint`).

    Args:
      argv: the program name, as absl passes it (the command takes no positional arguments).
    """
    common.apply_runtime_flags()
    from autogan_tf.official import importer

    importer.import_checkpoint(FLAGS.checkpoint, FLAGS.arch, FLAGS.gf_dim,
                               FLAGS.bottom_width, FLAGS.model_dir,
                               latent_dim=FLAGS.latent_dim, dataset=FLAGS.dataset)


def run():
    """Console script `autogan-import`: parse its flags and run `main` (`common.run`)."""
    common.run(main)


if __name__ == "__main__":
    run()
