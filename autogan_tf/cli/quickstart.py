"""autogan-quickstart: the whole pipeline at toy scale on built-in data, in minutes on a CPU.

    autogan-quickstart --output_dir=/tmp/autogan_quickstart

search -> train the best architecture -> evaluate -> export a SavedModel -> sample a PNG grid.

Prints a headline per stage (classifier, search, training, evaluation, export) as it
runs, then where the samples, the SavedModel, the architecture and every figure are, with
the IS and FID; a run stopped by a signal exits with status 75 (rerun to resume).
"""

import os
import time

from absl import flags

from autogan_tf.cli import common

START = time.time()  # the whole command is timed, TensorFlow's start-up included
FLAGS = flags.FLAGS
common.define_runtime_flags(small_models=True)
flags.DEFINE_string("output_dir", "/tmp/autogan_quickstart", "Where every artifact goes.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_boolean("conditional", False, "Class-conditional models: G draws the shape asked "
                     "for; the evaluation reports how often the classifier sees it, and the "
                     "sample grid has one row per class.")
flags.DEFINE_multi_string(
    "search_setting", [], "KEY=VALUE: replace one setting of the quick search (the shipped "
    "flagfile search_quick), e.g. --search_setting=reward_bn=batch; repeat for several.")
flags.DEFINE_multi_string(
    "train_setting", [], "KEY=VALUE: replace one setting of the training (the shipped "
    "flagfile train_quick), e.g. --train_setting=max_iters=6000; repeat for several.")

# Set by the quick start itself: the seed (its own flag), the found architecture, and the
# data and scoring (the built-in shapes, scored by the classifier it trains on them).
RESERVED = ("seed", "arch", "dataset", "data_dir", "classifier", "feature_layer",
            "inception_path", "fid_stats", "conditional", "num_classes")


def main(argv):
    """Run the toy pipeline (`quickstart.quickstart`) and print where its artifacts are.

    Args:
      argv: the program name, as absl passes it (the command takes no positional arguments).
    """
    common.apply_runtime_flags()
    from autogan_tf import flagfiles, quickstart
    from autogan_tf.config import SearchConfig, TrainConfig

    search_overrides = flagfiles.parse_settings(FLAGS.search_setting, SearchConfig,
                                                "--search_setting", RESERVED)
    train_overrides = flagfiles.parse_settings(FLAGS.train_setting, TrainConfig,
                                               "--train_setting", RESERVED)
    quickstart.quick_configs(FLAGS.seed, search_overrides, train_overrides,
                             FLAGS.conditional)  # fail fast

    print("autogan-quickstart: search -> train -> evaluate -> export on the built-in shapes "
          "data (8 classes, 16x16): about 13 minutes on 2 CPU cores, 3 where they compute "
          "bfloat16", flush=True)
    artifacts = quickstart.quickstart(FLAGS.output_dir, seed=FLAGS.seed,
                                    search_overrides=search_overrides,
                                    train_overrides=train_overrides,
                                    echo=lambda text: print(text, flush=True),
                                    conditional=FLAGS.conditional)
    if artifacts.get("preempted"):
        common.exit_if_preempted(artifacts, "autogan-quickstart")
    accuracy = artifacts["classifier_accuracy"]
    print(f"\nautogan-quickstart finished in {time.time() - START:.0f} s")
    print(f"  samples        {artifacts['samples']}  (64 images from the exported model)")
    print(f"  SavedModel     {artifacts['saved_model']}")
    print(f"  architecture   {artifacts['best_arch']}  ({artifacts['search_result']})")
    print(f"  IS {artifacts['is_mean']:.2f} of 8 classes, FID {artifacts['fid']:.1f}: scored by "
          f"the quick start's classifier"
          + (f" ({100 * accuracy:.1f} % test accuracy)" if accuracy is not None else "")
          + f", not comparable with Inception scores; held-out real images score IS "
          f"{artifacts['real_is_mean']:.2f}, FID {artifacts['real_fid']:.1f}")
    if artifacts.get("class_accuracy") is not None:
        print(f"  class asked for, recognised in {100 * artifacts['class_accuracy']:.1f} % of "
              f"the samples (one row per class in the grid)")
    print(f"  every figure   {os.path.join(FLAGS.output_dir, 'quickstart.json')}")


def run():
    """Console script `autogan-quickstart`: parse its flags and run `main` (`common.run`)."""
    common.run(main)


if __name__ == "__main__":
    run()
