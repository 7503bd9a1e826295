"""autogan-summary: parameters and forward cost of an AutoGAN generator and discriminator.

    autogan-summary --arch=autogan_cifar10_a --gf_dim=256 --df_dim=128 [--json] [--plot=arch.png]
"""

import json

from absl import app, flags

from autogan_tf import search_space as ss
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


def summarize(arch, gf_dim, df_dim, latent_dim, bottom_width):
    """The numbers autogan-summary prints, as a dict."""
    from autogan_tf import models  # TensorFlow import only when needed

    arch = ss.parse_arch(arch)
    g = models.DerivedGenerator(arch, gf_dim=gf_dim, latent_dim=latent_dim,
                                bottom_width=bottom_width)
    d = models.Discriminator(df_dim, num_cells=arch.num_cells)
    g_macs = models.generator_macs(arch, gf_dim, latent_dim, bottom_width)
    d_macs = models.discriminator_macs(df_dim, g.image_size, arch.num_cells)
    return {
        "arch": str(arch), "image_size": g.image_size,
        "g_params": models.count_params(g), "d_params": models.count_params(d),
        # FLOPs = 2 x multiply-accumulates; the paper's "GFLOPs" are GMACs.
        "g_gflops": 2 * g_macs / 1e9, "d_gflops": 2 * d_macs / 1e9,
        "g_gmacs": g_macs / 1e9, "d_gmacs": d_macs / 1e9,
    }


def _plot(path):
    """Draw --arch into ``path``; a bad path is a one-line usage error."""
    import os

    from autogan_tf import arch_plot

    if not path.lower().endswith(".png"):
        raise app.UsageError(f"--plot={path} must end in .png")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise app.UsageError(f"--plot={path}: directory {directory} does not exist")
    return arch_plot.save_architecture(FLAGS.arch, path, bottom_width=FLAGS.bottom_width,
                                       gf_dim=FLAGS.gf_dim, latent_dim=FLAGS.latent_dim)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        result = summarize(FLAGS.arch, FLAGS.gf_dim, FLAGS.df_dim, FLAGS.latent_dim,
                           FLAGS.bottom_width)
    except ss.ArchError as e:
        raise app.UsageError(f"--arch: {e}")
    except ValueError as e:
        raise app.UsageError(str(e))
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
    common.run(main)


if __name__ == "__main__":
    run()
