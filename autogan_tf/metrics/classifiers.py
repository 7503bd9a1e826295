"""Feature extractors: one interface for Inception and for any Keras classifier.

Every extractor is called as ``extractor(uint8 images [B, H, W, 3]) ->
(logits [B, K], features [B, D])`` and has ``name``, ``feature_dim`` and
``num_classes``. IS uses the softmax of the logits, FID the features, so a
small classifier trained on the data set itself (cheap on a CPU, and
meaningful for data sets far from ImageNet) can stand in for Inception with
``--classifier=model.keras``. Such numbers are only comparable with numbers
from the same classifier, never with the paper's.
"""

from __future__ import annotations

import json
import math
import os

from autogan_tf import errors, runlog

FEATURE_LAYER = "features"
BN_MOMENTUM = 0.9  # of the small classifier's batch norm; see build_classifier
INCEPTION = "inception"


class ClassifierError(errors.UserError):
    """A classifier file or feature layer that cannot serve as a feature extractor."""


class KerasClassifierExtractor:
    """Logits and features of a Keras classifier whose output is class logits.

    Images reach the model as float32 in [0, 255] at the data set's
    resolution (the model does its own preprocessing, e.g. a ``Rescaling``
    layer). If the model has a fixed input size that differs from the
    images', they are resized bilinearly first; ``image_size`` sets the size
    for models with free spatial dimensions. Features are the output of
    ``feature_layer`` (default: the input of the last layer), flattened.

    Args:
      model: a Keras model taking images ``[B, H, W, 3]`` and returning logits ``[B, K]``.
      feature_layer: the name of the layer whose output is the features (None: the input of
        the last layer).
      image_size: the side images are resized to for a model without a fixed input size
        (None: no resize).
      name: the extractor's name, recorded in statistics files (default ``keras:<model name>``).
      max_batch: larger batches are run in chunks of this many images, to bound memory.

    Raises:
      ClassifierError: the model's input or output does not have the required shape, or
        ``feature_layer`` does not exist.
    """

    def __init__(self, model, feature_layer: str | None = None, image_size: int | None = None,
                 name: str | None = None, max_batch: int = 500):
        import keras
        import tensorflow as tf

        self.model = model
        self.name = name or f"keras:{model.name}"
        self.max_batch = int(max_batch)
        feature_tensor = _feature_tensor(model, feature_layer)
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        self._both = keras.Model(inputs, [model.outputs[0], feature_tensor])
        in_shape = tuple(model.inputs[0].shape)
        if len(in_shape) != 4 or in_shape[-1] != 3:
            raise ClassifierError(f"classifier {self.name} must take images [B, H, W, 3], "
                                  f"its input is {in_shape}")
        fixed = in_shape[1:3] if None not in in_shape[1:3] else None
        self.image_size = tuple(fixed) if fixed else ((image_size, image_size) if image_size else None)
        logits_shape = tuple(model.outputs[0].shape)
        if len(logits_shape) != 2:
            raise ClassifierError(f"classifier {self.name} must output logits [B, K], got {logits_shape}")
        self.num_classes = int(logits_shape[-1])
        self.feature_dim = int(math.prod(d for d in feature_tensor.shape[1:]))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
                     reduce_retracing=True)
        def run(images):
            if self.image_size is not None:
                images = tf.image.resize(images, self.image_size, method="bilinear")
            logits, features = self._both(images, training=False)
            return (tf.cast(logits, tf.float32),
                    tf.reshape(tf.cast(features, tf.float32), [tf.shape(features)[0], -1]))

        self._run = run

    def __call__(self, images):
        """Logits and features of a batch of images.

        Args:
          images: uint8 (or float in [0, 255]) images ``[B, H, W, 3]``.

        Returns:
          ``(logits [B, K], features [B, D])``, float32 tensors.

        Raises:
          ValueError: ``images`` is not ``[B, H, W, 3]``.
        """
        import tensorflow as tf

        images = tf.cast(tf.convert_to_tensor(images), tf.float32)
        if images.shape.rank != 4 or images.shape[-1] != 3:
            raise ValueError(f"{self.name} expects images [B, H, W, 3], got shape {images.shape}")
        n = int(images.shape[0])
        if n <= self.max_batch:
            return self._run(images)
        parts = [self._run(images[i:i + self.max_batch]) for i in range(0, n, self.max_batch)]
        return tf.concat([p[0] for p in parts], 0), tf.concat([p[1] for p in parts], 0)


def _feature_tensor(model, feature_layer: str | None):
    if feature_layer:
        try:
            return model.get_layer(feature_layer).output
        except ValueError as e:
            names = [layer.name for layer in model.layers]
            raise ClassifierError(f"--feature_layer={feature_layer}: no such layer in "
                                  f"{model.name} (layers: {', '.join(names)})") from e
    last_input = model.layers[-1].input
    if isinstance(last_input, (list, tuple)):
        raise ClassifierError(f"the last layer of {model.name} has several inputs; "
                              "name the feature layer with --feature_layer")
    return last_input


def load_keras_classifier(path: str, feature_layer: str | None = None,
                          image_size: int | None = None) -> KerasClassifierExtractor:
    """Load a ``.keras`` classifier with ``safe_mode=True`` (no arbitrary code).

    Args:
      path: the ``.keras`` file.
      feature_layer: the feature layer's name (None: the input of the last layer).
      image_size: the side to resize to for a model without a fixed input size.

    Returns:
      A `KerasClassifierExtractor` named ``keras:<file name>``.

    Raises:
      ClassifierError: the file is missing, does not end in ``.keras``, cannot be loaded, or
        does not fit the extractor's contract.
    """
    import keras

    if not os.path.isfile(path):
        raise ClassifierError(f"--classifier={path}: file not found (give 'inception' or a .keras model)")
    if not path.endswith(".keras"):
        raise ClassifierError(f"--classifier={path}: expected a Keras model file ending in .keras")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for unreadable files
        raise ClassifierError(f"--classifier={path}: cannot load the Keras model: {e}") from e
    return KerasClassifierExtractor(model, feature_layer=feature_layer, image_size=image_size,
                                    name=f"keras:{os.path.basename(path)}")


def load_feature_extractor(classifier: str = INCEPTION, feature_layer: str | None = None,
                           inception_path: str | None = None, image_size: int | None = None):
    """The extractor named by a ``--classifier`` value: ``inception`` or a ``.keras`` path.

    ``feature_layer`` and ``image_size`` apply to Keras classifiers only; the
    Inception graph always uses pool_3 and resizes to 299 itself.

    Args:
      classifier: "inception" (or empty) or the path of a ``.keras`` classifier.
      feature_layer: the feature layer of a Keras classifier.
      inception_path: the Inception graph file or archive (None: the cached download).
      image_size: the input side of a Keras classifier with free spatial dimensions.

    Returns:
      The Inception extractor or a `KerasClassifierExtractor`.

    Raises:
      ClassifierError: a ``feature_layer`` with Inception, or an unusable ``.keras`` file.
      InceptionUnavailableError: the Inception graph is not available.
    """
    if classifier and (classifier == "auto" or classifier.startswith("label_free:")):
        raise ClassifierError(
            f"--classifier={classifier} names a network that autogan-search, autogan-train and "
            "autogan-derive train on their data set; here give the file they cached in their "
            "run directory (classifier.keras or label_free_KIND.keras)")
    if not classifier or classifier == INCEPTION:
        if feature_layer:
            raise ClassifierError("--feature_layer applies to Keras classifiers only; Inception "
                                  "always uses pool_3")
        from autogan_tf.metrics.inception import load_inception

        return load_inception(inception_path)
    return load_keras_classifier(classifier, feature_layer=feature_layer, image_size=image_size)


# --------------------------------------------------------------------------
# The small CPU-friendly classifier
# --------------------------------------------------------------------------


def build_classifier(num_classes: int, image_size: int = 32, width: int = 32,
                     name: str = "small_classifier"):
    """A VGG-style CNN (3 stages of 2 conv-BN-ReLU) with GAP features and logits.

    Takes float images in [0, 255] (``Rescaling`` inside), so saved models
    need no outside preprocessing; the global-average-pooled layer is named
    ``features`` and feeds the final ``logits`` Dense directly.

    Batch norm keeps its moving statistics with momentum 0.9, not Keras'
    0.99: a short training (the quick start's is ~100 steps) otherwise ends
    with statistics that are still mostly their initial values, and the model
    scores near chance in inference mode however well it fits the batches
    (measured on ``shapes``: 32 % test accuracy at 0.99, 100 % at 0.9).

    Args:
      num_classes: the number of logits.
      image_size: the input side.
      width: the channels of the first stage (doubled at each of the next two).
      name: the model's name.

    Returns:
      An uncompiled `keras.Model`.
    """
    import keras
    from keras import layers

    inputs = keras.Input((image_size, image_size, 3), name="images")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    for stage, filters in enumerate((width, 2 * width, 4 * width)):
        for conv in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                              name=f"conv{stage}_{conv}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{stage}_{conv}")(x)
            x = layers.ReLU(name=f"relu{stage}_{conv}")(x)
        if stage < 2:
            x = layers.MaxPooling2D(name=f"pool{stage}")(x)
    features = layers.GlobalAveragePooling2D(name=FEATURE_LAYER)(x)
    logits = layers.Dense(num_classes, name="logits")(features)
    return keras.Model(inputs, logits, name=name)


def classifier_macs(model) -> int:
    """Multiply-accumulates of one forward pass (conv and dense layers).

    Args:
      model: a built Keras model; only its ``Conv2D`` and ``Dense`` layers are counted.

    Returns:
      The count, as an int.
    """
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c_out * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def _augment_fn(seed: int):
    """Random horizontal flips and +-4 px reflected shifts, per image, from the run seed's
    streams (`seeds.CLASSIFIER_FLIPS`, `seeds.CLASSIFIER_SHIFTS`)."""
    import keras

    from autogan_tf import seeds

    flip = keras.layers.RandomFlip("horizontal", seed=seeds.integer(seed, seeds.CLASSIFIER_FLIPS))
    shift = keras.layers.RandomTranslation(0.125, 0.125, fill_mode="reflect",
                                           seed=seeds.integer(seed, seeds.CLASSIFIER_SHIFTS))
    return lambda images: shift(flip(images, training=True), training=True)


def _scalar_logger(log_dir: str):
    """Per-epoch metrics as TensorBoard scalars, written with TF's core summary ops.

    Keras' TensorBoard callback needs the ``tensorboard`` package; this
    writes the same event files (scalars plugin) without it.
    """
    import keras
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")).SerializeToString()
    writer = tf.summary.create_file_writer(log_dir)

    class ScalarLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            with writer.as_default():
                for name, value in logs.items():
                    tf.summary.write(f"epoch/{name}", tf.constant(float(value)), step=epoch + 1,
                                     metadata=metadata)
            writer.flush()

    return ScalarLogger()


def _to_pixels(images):
    """[-1, 1] data-set floats back to the classifier's [0, 255] input range."""
    return images * 127.5 + 127.5


def train_classifier(dataset: str, *, epochs: int = 12, batch_size: int = 128,
                     image_size: int | None = None, width: int = 32, learning_rate: float = 2e-3,
                     weight_decay: float = 5e-4, augment: bool = True, model_dir: str | None = None,
                     data_dir: str | None = None, seed: int = 0, max_train_images: int | None = None,
                     max_test_images: int | None = None, verbose: int = 2):
    """Train :func:`build_classifier` on a labelled data set; return (model, test accuracy).

    AdamW with a per-epoch cosine learning-rate decay; flips and small shifts
    as augmentation. With ``model_dir``: TensorBoard logs, a CSV of the
    epoch metrics and per-epoch checkpoints there.

    Args:
      dataset: a labelled ``--dataset`` value; its ``test`` split measures the accuracy.
      epochs: training epochs (the learning rate follows a cosine over them).
      batch_size: training images per step.
      image_size: the input side (None: the data set's native resolution).
      width: the model's width (see `build_classifier`).
      learning_rate: AdamW's initial learning rate.
      weight_decay: AdamW's weight decay.
      augment: use random flips and shifts.
      model_dir: where logs and checkpoints go (None: nowhere).
      data_dir: the TensorFlow Datasets directory.
      seed: the run seed of the weights, the data order and the augmentation (`seeds`).
      max_train_images: train on at most this many images (None: all).
      max_test_images: test on at most this many images (None: all).
      verbose: Keras' ``fit`` verbosity.

    Returns:
      ``(model, accuracy)``: the trained `keras.Model` and its test accuracy as a float.

    Raises:
      data.DataError: the data set cannot be loaded.
    """
    import keras
    import tensorflow as tf

    from autogan_tf import data, seeds

    keras.utils.set_random_seed(seeds.integer(seed, seeds.CLASSIFIER_WEIGHTS))
    data_seed = seeds.integer(seed, seeds.CLASSIFIER_DATA)
    size = image_size or data.native_resolution(dataset)
    n_classes = data.num_classes(dataset, data_dir=data_dir)

    # A folder smaller than a batch still makes one full batch per epoch (else an epoch
    # would hold no batch at all and Keras would wait for one forever).
    available = data.num_images(dataset, "train", data_dir)
    batch_size = max(1, min(batch_size, available, max_train_images or available))

    def train_batches(repeat):
        return data.make_dataset(dataset, batch_size, size, split="train", shuffle=True,
                                 repeat=repeat, seed=data_seed, with_labels=True, data_dir=data_dir,
                                 max_images=max_train_images)

    # Repeated, so every epoch has its own order; an epoch is one pass's batches.
    steps_per_epoch = int(train_batches(repeat=False).cardinality())
    train = train_batches(repeat=True)
    augment_images = _augment_fn(seed) if augment else (lambda x: x)
    train = train.map(lambda x, y: (augment_images(_to_pixels(x)), y),
                      num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    test = data.make_dataset(dataset, 256, size, split="test", shuffle=False, repeat=False,
                             with_labels=True, drop_remainder=False, data_dir=data_dir,
                             max_images=max_test_images)
    test = test.map(lambda x, y: (_to_pixels(x), y)).prefetch(tf.data.AUTOTUNE)

    model = build_classifier(n_classes, size, width)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    callbacks = [keras.callbacks.LearningRateScheduler(
        lambda epoch, _: learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / epochs)))]
    if model_dir:
        os.makedirs(model_dir, exist_ok=True)
        callbacks += [_scalar_logger(os.path.join(model_dir, "logs")),
                      keras.callbacks.CSVLogger(os.path.join(model_dir, "epochs.csv")),
                      keras.callbacks.ModelCheckpoint(os.path.join(model_dir, "last.keras"))]
    model.fit(train, epochs=epochs, steps_per_epoch=steps_per_epoch, validation_data=test,
              callbacks=callbacks, verbose=verbose, shuffle=False)  # the pipeline shuffles
    _, accuracy = model.evaluate(test, verbose=0)
    return model, float(accuracy)


class op_determinism:
    """TensorFlow's deterministic kernels inside the block (same seed -> same classifier)."""

    def __enter__(self):
        import tensorflow as tf
        from tensorflow.python.framework import config as tf_config

        self._was = tf_config.is_op_determinism_enabled()
        tf.config.experimental.enable_op_determinism()

    def __exit__(self, *exc):
        from tensorflow.python.framework import config as tf_config

        if not self._was:
            tf_config.disable_op_determinism()


def train_small_classifier(dataset, path, epochs=4, data_dir=None, max_train_images=None,
                           width=32, image_size=None, seed=0, echo=None):
    """A small classifier for IS/FID on machines without the Inception weights (cached).

    Args:
      dataset: a ``--dataset`` value with labels (``shapes``, ``cifar10``, ``folder:...``).
      path: the ``.keras`` file to write; if it exists it is reused as it is.
      epochs, max_train_images, width, image_size: training budget, model width and
        input resolution (None: the data set's; see `metrics.classifiers.train_classifier`).
      seed: makes the result repeatable (TensorFlow's op determinism is switched on
        while it trains).
      echo: called with a progress message (None: absl logging).

    Returns:
      ``(path, test_accuracy)``; the accuracy is kept beside the model in
      ``PATH.json`` so a reused classifier still reports it (None if unknown).
    """
    from absl import logging

    say = echo or logging.info
    info_path = path + ".json"
    if os.path.exists(path):
        accuracy = None
        if os.path.exists(info_path):
            with open(info_path, encoding="utf-8") as f:
                accuracy = json.load(f).get("test_accuracy")
        return path, accuracy
    say(f"training a small classifier on {dataset} for IS/FID ({epochs} epochs) -> {path}")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with op_determinism():
        model, accuracy = train_classifier(
            dataset, epochs=epochs, data_dir=data_dir, max_train_images=max_train_images,
            width=width, image_size=image_size, seed=seed, verbose=0)
    tmp = path + ".tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)
    runlog.write_json_atomic(info_path, {"test_accuracy": accuracy, "dataset": dataset,
                                         "epochs": epochs, "width": width,
                                         "image_size": image_size, "seed": seed})
    return path, accuracy
