"""autogan-summary: parameters and forward cost of an AutoGAN generator and discriminator.

    autogan-summary --arch=autogan_cifar10_a --gf_dim=256 --df_dim=128 [--json]
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


def main(argv):
    arch = common.parse_arch_flag(FLAGS.arch)  # a bad one fails before TensorFlow starts
    from autogan_tf import models

    result = models.summarize(arch, FLAGS.gf_dim, FLAGS.df_dim, FLAGS.latent_dim,
                              FLAGS.bottom_width)
    if FLAGS.json:
        print(json.dumps(result))
        return
    print(f"architecture  {result['arch']}  ({result['image_size']}x{result['image_size']} images)")
    print(f"{'':14}{'params':>12}{'GFLOPs/img':>12}{'GMACs/img':>12}")
    for net in ("g", "d"):
        print(f"{net.upper():14}{result[net + '_params']:>12,}{result[net + '_gflops']:>12.3f}"
              f"{result[net + '_gmacs']:>12.3f}")


def run():
    common.run(main)


if __name__ == "__main__":
    run()
