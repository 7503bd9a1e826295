"""autogan-quickstart: the whole pipeline at toy scale on built-in data, in minutes on a CPU.

    autogan-quickstart --output_dir=/tmp/autogan_quickstart

search -> train the best architecture -> evaluate -> export a SavedModel -> sample a PNG grid.
"""

import json

from absl import app, flags

from autogan_tf.cli import common

FLAGS = flags.FLAGS
common.define_runtime_flags()
flags.DEFINE_string("output_dir", "/tmp/autogan_quickstart", "Where every artifact goes.")
flags.DEFINE_integer("seed", 0, "Random seed.")


def main(argv):
    common.apply_runtime_flags()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from autogan_tf import pipeline

    artifacts = pipeline.quickstart(FLAGS.output_dir, seed=FLAGS.seed)
    print("\nautogan-quickstart finished in %.0f s" % artifacts["wall_time_s"])
    for key in ("search_result", "best_arch", "train_dir", "evaluation", "saved_model", "samples"):
        print(f"  {key:<14} {artifacts[key]}")
    print(f"  IS {artifacts['is_mean']:.2f}, FID {artifacts['fid']:.2f} "
          f"(small classifier {artifacts['classifier']}; not comparable with Inception scores)")
    print(json.dumps(artifacts))


def run():
    common.run(main)


if __name__ == "__main__":
    run()
