"""autogan-train-classifier: a small CNN classifier to stand in for Inception in IS/FID.

    autogan-train-classifier --dataset=folder:/tmp/cifar10 --output=cifar10_classifier.keras
    autogan-fid-stats --dataset=folder:/tmp/cifar10 --classifier=cifar10_classifier.keras ...

The saved model takes float images in [0, 255] (it rescales them itself),
outputs class logits, and names its feature layer ``features``. Needs a
labelled data set with a test split (folder data sets: ``train/`` and
``test/`` sub-folders, each with one folder per class).

Prints one JSON line: ``output``, ``test_accuracy``, ``params``, ``image_size`` and
``seconds``.
"""

import json
import os
import time

from absl import flags

from autogan_tf import errors
from autogan_tf.cli import common

FLAGS = flags.FLAGS
common.define_runtime_flags()
flags.DEFINE_string("dataset", None, "Labelled data set: cifar10, stl10, shapes or folder:PATH.")
flags.DEFINE_string("output", None, "Where to save the trained model (.keras).")
flags.DEFINE_integer("epochs", 12, "Passes over the training split.")
flags.DEFINE_integer("batch_size", 128, "Training batch size.")
flags.DEFINE_integer("image_size", None, "Training resolution (default: the data set's own).")
flags.DEFINE_integer("width", 32, "Channels of the first stage (doubled twice).")
flags.DEFINE_float("learning_rate", 2e-3, "Initial AdamW learning rate (cosine decay per epoch).")
flags.DEFINE_bool("augment", True, "Random flips and small shifts during training.")
flags.DEFINE_string("model_dir", None, "Optional directory for TensorBoard logs, epochs.csv, checkpoint.")
flags.DEFINE_string("data_dir", None, "tensorflow-datasets data directory.")
flags.DEFINE_integer("max_train_images", None, "Train on a subset of this many images (quick runs).")
flags.DEFINE_integer("max_test_images", None, "Evaluate on a subset of this many test images.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.mark_flags_as_required(["dataset", "output"])


def main(argv):
    """Train the classifier (`metrics.classifiers.train_classifier`), save it and print a summary.

    Args:
      argv: the program name, as absl passes it (the command takes no positional arguments).
    """
    common.apply_runtime_flags()
    if not FLAGS.output.endswith(".keras"):
        raise errors.UserError(f"--output={FLAGS.output} must end in .keras")
    for name in ("epochs", "batch_size", "width"):
        if getattr(FLAGS, name) < 1:
            raise errors.UserError(f"--{name} must be positive")
    from autogan_tf.metrics import classifiers

    start = time.time()
    model, accuracy = classifiers.train_classifier(
        FLAGS.dataset, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
        image_size=FLAGS.image_size, width=FLAGS.width, learning_rate=FLAGS.learning_rate,
        augment=FLAGS.augment, model_dir=FLAGS.model_dir, data_dir=FLAGS.data_dir,
        seed=FLAGS.seed, max_train_images=FLAGS.max_train_images,
        max_test_images=FLAGS.max_test_images)
    directory = os.path.dirname(os.path.abspath(FLAGS.output))
    os.makedirs(directory, exist_ok=True)
    model.save(FLAGS.output)
    print(json.dumps({"output": FLAGS.output, "test_accuracy": round(accuracy, 4),
                      "params": int(model.count_params()),
                      "image_size": int(model.inputs[0].shape[1]),
                      "seconds": round(time.time() - start, 1)}))


def run():
    """Console script `autogan-train-classifier`: parse its flags and run `main` (`common.run`)."""
    common.run(main)


if __name__ == "__main__":
    run()
