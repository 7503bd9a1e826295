"""Feature networks that need no labels, for scoring images of a folder that has none.

The Inception Score needs a classifier of several classes, and a classifier needs labels:
an unlabelled folder is one class, and every image's IS is then 1. A distance between the
feature distributions of generated and real images (FID, KID) needs only a network whose
features say something about the images. Three kinds, each the small classifier's
architecture (`classifiers.build_classifier`, saved as a ``.keras`` file; its features are
the global-average-pooled layer), each learnt from the folder's images alone:

* ``rotation``: trained to tell by how much (0, 90, 180 or 270 degrees) an image was
  turned (Gidaris et al., ICLR 2018): every image of a batch is shown in all four
  rotations. Knowing which way is up takes knowing the objects' shapes.
* ``contrastive``: trained so that two random views of one image (a flip, a shift, a
  colour change) have close projections and views of different images distant ones
  (the NT-Xent loss of SimCLR, Chen et al., ICML 2020), at a small scale.
* ``random``: the same network with random weights, its batch-norm statistics measured
  on the folder (forward passes, no gradient): a baseline that costs seconds.

``--classifier=label_free:KIND`` names one; the run trains it on ``--dataset`` once and
caches it in its directory (`scorer.resolve_classifier`). Every network is the same
for the same seed and data (TensorFlow's deterministic kernels while it trains).
"""

from __future__ import annotations

import json
import os

from autogan_tf import errors, seeds
from autogan_tf.config import LABEL_FREE_KINDS as KINDS
CLASSIFIER_PREFIX = "label_free:"   # --classifier=label_free:KIND
MODEL_PREFIX = "label_free_"        # the Keras model's name: label_free_KIND
ROTATIONS = 4                       # 0, 90, 180, 270 degrees
PROJECTION_DIM = 64                 # the contrastive network's projection (its logits)
TEMPERATURE = 0.5                   # of the NT-Xent loss
DEFAULT_STEPS = 300                 # training steps (the random network: calibration batches 20)
CALIBRATION_BATCHES = 20


def kind_of(classifier: str) -> str | None:
    """The kind a ``--classifier`` value names (``label_free:rotation`` -> ``rotation``), or
    None for any other value.

    Raises:
      errors.UserError: ``label_free:`` followed by an unknown kind.
    """
    if not classifier or not classifier.startswith(CLASSIFIER_PREFIX):
        return None
    kind = classifier[len(CLASSIFIER_PREFIX):]
    if kind not in KINDS:
        raise errors.UserError(f"--classifier={classifier}: the label-free kinds are "
                               f"{', '.join(CLASSIFIER_PREFIX + k for k in KINDS)}")
    return kind


def is_label_free(extractor) -> bool:
    """Whether a feature extractor is one of this module's networks (its logits are not
    classes of images, so it gives no Inception Score)."""
    model = getattr(extractor, "model", None)
    return getattr(model, "name", "").startswith(MODEL_PREFIX)


def file_name(kind: str) -> str:
    """The cached network's file name in a run directory."""
    return f"{MODEL_PREFIX}{kind}.keras"


def _pixels(dataset, size, batch_size, seed, data_dir, max_images):
    """Shuffled, repeated float images in [0, 255] of the training split (labels unused)."""
    from autogan_tf import data

    ds = data.make_dataset(dataset, batch_size, size, split="train", shuffle=True, repeat=True,
                           seed=seed, data_dir=data_dir, max_images=max_images,
                           drop_remainder=True)
    return ds.map(lambda x: x * 127.5 + 127.5)


def all_rotations(images):
    """Every image in each of the four rotations, and the rotation's index as its label.

    Args:
      images: ``[B, H, H, C]`` (square).

    Returns:
      ``(rotated [4 B, H, H, C], labels [4 B] int32)``: first every image turned 0 degrees,
      then 90, 180, 270 (anticlockwise, as `tf.image.rot90`).
    """
    import tensorflow as tf

    rotated = tf.concat([tf.image.rot90(images, k) for k in range(ROTATIONS)], 0)
    labels = tf.repeat(tf.range(ROTATIONS, dtype=tf.int32), tf.shape(images)[0])
    return rotated, labels


def nt_xent(projections_a, projections_b, temperature: float = TEMPERATURE):
    """SimCLR's loss: each view must find its partner among the ``2 B - 1`` other views.

    Args:
      projections_a, projections_b: ``[B, D]`` projections of two views of the same B images.
      temperature: the softmax temperature of the cosine similarities.

    Returns:
      The mean cross-entropy over the ``2 B`` views, a scalar tensor.
    """
    import tensorflow as tf

    z = tf.math.l2_normalize(tf.concat([projections_a, projections_b], 0), axis=1)
    n = tf.shape(projections_a)[0]
    similarity = tf.matmul(z, z, transpose_b=True) / temperature
    similarity -= tf.eye(2 * n) * 1e9  # a view is not its own partner
    partner = tf.concat([tf.range(n, 2 * n), tf.range(0, n)], 0)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(partner, similarity))


def two_views(pixels, key):
    """Two random views of each image: a horizontal flip, a shift and a colour change.

    Args:
      pixels: float ``[B, H, W, 3]`` in [0, 255].
      key: a stateless seed ``[2]``.

    Returns:
      Two float tensors of ``pixels``' shape in [0, 255].
    """
    import tensorflow as tf

    from autogan_tf import augment

    x = pixels / 127.5 - 1.0
    views = []
    for view in range(2):
        view_key = tf.random.experimental.stateless_fold_in(key, view)
        flip = tf.random.stateless_uniform([tf.shape(x)[0], 1, 1, 1], view_key) < 0.5
        flipped = tf.where(flip, tf.reverse(x, axis=[2]), x)
        changed = augment.augment(flipped, "translation,color",
                                  tf.random.experimental.stateless_fold_in(view_key, 1))
        views.append(tf.clip_by_value(changed, -1.0, 1.0) * 127.5 + 127.5)
    return views


def _fit(model, loss_fn, batches, steps):
    """``steps`` Adam steps of ``loss_fn(model, batch, step) -> scalar``; the mean loss of the
    last tenth of them."""
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.Adam(2e-3)

    @tf.function
    def step(batch, index):
        with tf.GradientTape() as tape:
            loss = loss_fn(model, batch, index)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    losses = [float(step(next(batches), tf.constant(i, tf.int64))) for i in range(steps)]
    tail = losses[-max(1, steps // 10):]
    return sum(tail) / len(tail)


def _rotation_loss(model, batch, _):
    import keras

    rotated, labels = all_rotations(batch)
    logits = model(rotated, training=True)
    return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True))


def _rotation_accuracy(model, batches, count=5):
    """The share of rotations the network tells right on ``count`` further batches of four
    rotations each (images it trained on, in inference mode)."""
    import numpy as np

    right = total = 0
    for _ in range(count):
        rotated, labels = all_rotations(next(batches))
        guess = np.argmax(model(rotated, training=False).numpy(), axis=1)
        right += int(np.sum(guess == labels.numpy()))
        total += len(guess)
    return right / total


def train(kind: str, dataset: str, *, steps: int = DEFAULT_STEPS, image_size=None,
          width: int = 32, batch_size: int = 64, seed: int = 0, data_dir=None,
          max_images=None):
    """A label-free network of ``kind``, learnt from ``dataset``'s images (labels unused).

    Args:
      kind: one of `KINDS`.
      dataset: a ``--dataset`` value.
      steps: training steps (``random``: none; it measures its batch-norm statistics on
        `CALIBRATION_BATCHES` batches).
      image_size: the input side (None: the data set's native resolution).
      width: the network's width (see `classifiers.build_classifier`).
      batch_size: images per step (at most the folder's size).
      seed: the seed of the weights and of the image order and views.
      data_dir, max_images: as `data.make_dataset`.

    Returns:
      ``(model, info)``: the Keras model (named ``label_free_KIND``) and what its training
      reached (``rotation_accuracy``, or the last loss).

    Raises:
      errors.UserError: an unknown ``kind`` or ``steps`` below 1.
    """
    import keras
    import tensorflow as tf

    from autogan_tf import data
    from autogan_tf.metrics import classifiers

    if kind not in KINDS:
        raise errors.UserError(f"label-free network kind must be one of {KINDS}, got {kind!r}")
    if steps < 1:
        raise errors.UserError(f"label-free network steps must be at least 1, got {steps}")
    size = image_size or data.native_resolution(dataset)
    available = data.num_images(dataset, "train", data_dir)
    batch_size = max(2, min(batch_size, available, max_images or available))
    keras.utils.set_random_seed(seeds.integer(seed, seeds.LABEL_FREE_WEIGHTS))
    batches = iter(_pixels(dataset, size, batch_size, seeds.integer(seed, seeds.LABEL_FREE_DATA),
                           data_dir, max_images))
    outputs = {"rotation": ROTATIONS, "contrastive": PROJECTION_DIM, "random": 1}[kind]
    model = classifiers.build_classifier(outputs, size, width, name=MODEL_PREFIX + kind)
    info = {"kind": kind, "steps": steps, "batch_size": batch_size, "width": width,
            "image_size": size, "seed": seed}
    if kind == "rotation":
        info["last_loss"] = _fit(model, _rotation_loss, batches, steps)
        info["rotation_accuracy"] = _rotation_accuracy(model, batches)
    elif kind == "contrastive":
        key = seeds.stateless(seed, seeds.LABEL_FREE_VIEWS)

        def loss(model, batch, index):
            view_a, view_b = two_views(batch, tf.random.experimental.stateless_fold_in(key, index))
            return nt_xent(model(view_a, training=True), model(view_b, training=True))

        info["last_loss"] = _fit(model, loss, batches, steps)
    else:
        info["steps"] = 0
        for _ in range(CALIBRATION_BATCHES):  # batch norm's moving statistics, no gradient
            model(next(batches), training=True)
    return model, info


def network(kind: str, dataset: str, path: str, *, echo=None, **training) -> tuple[str, dict]:
    """The label-free network of ``kind`` for ``dataset``, trained once and cached at ``path``.

    Args:
      kind: one of `KINDS`.
      dataset: the ``--dataset`` it learns from.
      path: the ``.keras`` file; an existing one is reused as it is (with ``PATH.json``).
      echo: called with a progress message (None: absl logging).
      **training: arguments of `train`.

    Returns:
      ``(path, info)``: the file and what its training reached.
    """
    from absl import logging

    from autogan_tf import runlog
    from autogan_tf.metrics import classifiers

    info_path = path + ".json"
    if os.path.exists(path):
        info = {}
        if os.path.exists(info_path):
            with open(info_path, encoding="utf-8") as f:
                info = json.load(f)
        return path, info
    (echo or logging.info)(f"training a label-free {kind} network on {dataset}'s images "
                           f"(no labels) -> {path}")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with classifiers.op_determinism():
        model, info = train(kind, dataset, **training)
    info["dataset"] = dataset
    model.save(path + ".tmp.keras")
    os.replace(path + ".tmp.keras", path)
    runlog.write_json_atomic(info_path, info)
    return path, info
