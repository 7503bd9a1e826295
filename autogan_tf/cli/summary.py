"""autogan-summary: parameters and forward cost of an AutoGAN generator and discriminator.

    autogan-summary --arch=autogan_cifar10_a --gf_dim=256 --df_dim=128 [--json] [--plot=arch.png]

Prints a table of parameters, GFLOPs and GMACs per image of G and D (or, with --json, one
JSON object), and the drawing's path with --plot.
"""

import json

from absl import flags

from autogan_tf.cli import common

FLAGS = flags.FLAGS
flags.DEFINE_string("arch", "autogan_cifar10_a",
                    "Architecture: an alias, a vector like '1 0 1 1 1 0 0 1 1 1 0 1 0 3', or a JSON file.")
flags.DEFINE_integer("gf_dim", 256, "Generator width (channels).")
flags.DEFINE_integer("df_dim", 128, "Discriminator width (channels).")
flags.DEFINE_integer("latent_dim", 128, "Size of z.")
flags.DEFINE_integer("bottom_width", 4, "Side of the first feature map; images are bottom_width * 2^cells.")
flags.DEFINE_bool("json", False, "Print one JSON object instead of a table.")
flags.DEFINE_string("plot", None, "Also draw the architecture (cells, blocks, skip connections, "
                    "as the paper's Figure 3) into this PNG file.")


def _plot(path):
    """Draw --arch into ``path``; a bad path is a one-line user error."""
    import os

    from autogan_tf import arch_plot, errors

    if not path.lower().endswith(".png"):
        raise errors.UserError(f"--plot={path} must end in .png")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise errors.UserError(f"--plot={path}: directory {directory} does not exist")
    return arch_plot.save_architecture(FLAGS.arch, path, bottom_width=FLAGS.bottom_width,
                                       gf_dim=FLAGS.gf_dim, latent_dim=FLAGS.latent_dim)


def main(argv):
    """Summarise the architecture (`models.summarize`) and print it; draw it with --plot.

    Args:
      argv: the program name, as absl passes it (the command takes no positional arguments).
    """
    arch = common.parse_arch_flag(FLAGS.arch)  # a bad one fails before TensorFlow starts
    from autogan_tf import models

    result = models.summarize(arch, FLAGS.gf_dim, FLAGS.df_dim, FLAGS.latent_dim,
                              FLAGS.bottom_width)
    if FLAGS.plot:
        result["plot"] = _plot(FLAGS.plot)
    if FLAGS.json:
        print(json.dumps(result))
        return
    print(f"architecture  {result['arch']}  ({result['image_size']}x{result['image_size']} images)")
    print(f"{'':14}{'params':>12}{'GFLOPs/img':>12}{'GMACs/img':>12}")
    for net in ("g", "d"):
        print(f"{net.upper():14}{result[net + '_params']:>12,}{result[net + '_gflops']:>12.3f}"
              f"{result[net + '_gmacs']:>12.3f}")
    if FLAGS.plot:
        print(f"drawing     {result['plot']}")


def run():
    """Console script `autogan-summary`: parse its flags and run `main` (`common.run`)."""
    common.run(main)


if __name__ == "__main__":
    run()
