"""Class-conditional pieces: per-class scale and shift, the class embedding, the projection.

A class-conditional model (``--conditional``) is told which class to draw:

* the generator joins a learned class embedding to ``z`` before its stem (`ClassEmbedding`),
  and every batch or instance norm, in the cells and in the output head, is followed by a
  per-class scale and shift instead of a shared one (`ClassAffine`: conditional batch norm,
  de Vries et al. 2017; Miyato & Koyama 2018);
* the discriminator adds the projection term ``<embed(y), phi(x)>`` to its output
  (`Projection`, Miyato & Koyama 2018), spectrally normalised like the rest of D.

Labels are int ``[batch]`` class indices; `check_labels` refuses any outside
``0..num_classes - 1`` (a GPU's gather would silently return zeros for them).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from autogan_tf import errors
from autogan_tf.spectral_norm import spectrally_normalized
from autogan_tf.torch_layers import conv_init


def check_num_classes(num_classes) -> int:
    """``num_classes`` as an int: 0 (unconditional) or at least 2.

    Args:
      num_classes: the model's class count.

    Raises:
      ValueError: a negative count, or 1 (one class is an unconditional model).
    """
    num_classes = int(num_classes)
    if num_classes < 0 or num_classes == 1:
        raise ValueError(f"num_classes must be 0 (unconditional) or at least 2, got "
                         f"{num_classes}")
    return num_classes


def model_classes(config) -> int:
    """The class count of ``config``'s models: 0 unless ``conditional``; then
    ``num_classes`` (a run's saved configuration records it, `with_classes`), or when that
    is 0 the number of classes ``config.dataset`` has.

    Args:
      config: a `config.TrainConfig` or `config.SearchConfig`.

    Raises:
      errors.UserError: a conditional model of a data set with fewer than 2 classes.
    """
    if not config.conditional:
        return 0
    return config.num_classes or _count_classes(config)


def _count_classes(config) -> int:
    from autogan_tf import data

    found = data.num_classes(config.dataset, config.data_dir)
    if found < 2:
        raise errors.UserError(
            f"--conditional: --dataset={config.dataset} has {found} class; a class-conditional "
            "model needs labelled images of at least 2 classes (for a folder: one sub-folder "
            "per class)")
    return found


def with_classes(config):
    """``config`` with ``num_classes`` counted from its data set when it is conditional, so
    the run's saved configuration records the count (a later ``autogan-sample`` or export
    does not need the data). Called when a run starts.

    Args:
      config: a `config.TrainConfig` or `config.SearchConfig`.

    Raises:
      errors.UserError: a conditional model of a data set with fewer than 2 classes, or
        with more classes than ``--num_classes``.
    """
    if not config.conditional:
        return config
    found = _count_classes(config)
    if config.num_classes and found > config.num_classes:
        raise errors.UserError(f"--num_classes={config.num_classes}: --dataset={config.dataset} "
                               f"has {found} classes")
    return config.replace(num_classes=config.num_classes or found)


def model_labels(labels, num_classes: int, model: str, name: str = "labels"):
    """A model's call's labels: None for an unconditional model (which refuses any), else
    `check_labels`.

    Args:
      labels: the call's labels.
      num_classes: the model's classes (0: unconditional).
      model: what the model is, for the message ("generator", "discriminator").
      name: how an error names the labels.

    Raises:
      errors.UserError: labels given to an unconditional model, or `check_labels`'s.
    """
    if num_classes:
        return check_labels(labels, num_classes, name)
    if labels is not None:
        raise errors.UserError(f"{name}: this {model} is unconditional; it takes no labels "
                               "(train with --conditional for one that does)")
    return None


def check_labels(labels, num_classes: int, name: str = "labels"):
    """``labels`` as an int32 tensor ``[batch]``, every one in ``0..num_classes - 1``.

    Concrete values (NumPy, lists, eager tensors) are checked in Python and raise a
    `errors.UserError` naming ``name``; symbolic ones get `tf.debugging` assertions, which
    fail the step with the same message.

    Args:
      labels: class indices, one per image.
      num_classes: the model's class count (at least 2).
      name: how the error names them (a flag, a signature input or an argument).

    Raises:
      errors.UserError: a concrete label out of range, a non-integer dtype, or not 1-D.
    """
    if labels is None:
        raise errors.UserError(f"{name}: a class-conditional model needs one label per image")
    if isinstance(labels, (list, tuple, np.ndarray)) or (
            tf.is_tensor(labels) and tf.executing_eagerly()):
        values = np.asarray(labels)
        if values.ndim != 1:
            raise errors.UserError(f"{name}: one class index per image (a 1-D list), got shape "
                                   f"{values.shape}")
        if values.size and not np.issubdtype(values.dtype, np.integer):
            raise errors.UserError(f"{name}: class indices must be integers, got "
                                   f"{values.dtype}")
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise errors.UserError(f"{name}: class {int(bad[0])} is out of range: the model "
                                   f"has {num_classes} classes (0..{num_classes - 1})")
        return tf.constant(values.astype(np.int32))
    if not labels.dtype.is_integer:
        raise errors.UserError(f"{name}: class indices must be integers, got {labels.dtype.name}")
    labels = tf.cast(labels, tf.int32)
    message = f"{name}: a class is out of range: the model has {num_classes} classes"
    with tf.control_dependencies([
            tf.debugging.assert_non_negative(labels, message=message),
            tf.debugging.assert_less(labels, num_classes, message=message),
            tf.debugging.assert_rank(labels, 1, message=f"{name}: one class index per image")]):
        return tf.identity(labels)


class ClassAffine(layers.Layer):
    """``x * gamma[y] + beta[y]``: a per-class scale and shift of a normalised feature map.

    After a batch or instance norm without its own affine this is conditional batch
    (instance) norm. ``gamma`` starts at one and ``beta`` at zero, so an untrained model
    treats every class alike and learns the differences.

    Args:
      num_classes: the number of classes (at least 2).
      channels: the feature map's channels.
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, num_classes: int, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_num_classes(num_classes)
        self.channels = int(channels)

    def build(self, input_shape=None):
        """Create ``gamma`` and ``beta``, ``[num_classes, channels]`` each.

        Args:
          input_shape: ignored (the shapes follow from the constructor's arguments).
        """
        self.gamma = self.add_weight(shape=(self.num_classes, self.channels), name="gamma",
                                     initializer="ones")
        self.beta = self.add_weight(shape=(self.num_classes, self.channels), name="beta",
                                    initializer="zeros")
        super().build(input_shape)

    def call(self, x, labels):
        """Scale and shift ``x`` by its image's class.

        Args:
          x: NHWC (or ``[batch, channels]``) features.
          labels: int ``[batch]`` class indices (checked by the model that owns the layer).

        Returns:
          ``x``'s shape and dtype.
        """
        gamma = tf.cast(tf.gather(self.gamma, labels), x.dtype)
        beta = tf.cast(tf.gather(self.beta, labels), x.dtype)
        shape = tf.concat([tf.shape(gamma)[:1], tf.ones([len(x.shape) - 2], tf.int32),
                           [self.channels]], 0)
        return x * tf.reshape(gamma, shape) + tf.reshape(beta, shape)

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "num_classes": self.num_classes,
                "channels": self.channels}


class ClassEmbedding(layers.Layer):
    """A learned vector per class, joined to ``z`` before the generator's stem.

    Initialised N(0, 1) like ``z`` itself (PyTorch's ``nn.Embedding``), so the stem sees
    the class and the noise on the same scale from the first step.

    Args:
      num_classes: the number of classes (at least 2).
      dim: the embedding's length.
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, num_classes: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_num_classes(num_classes)
        self.dim = int(dim)

    def build(self, input_shape=None):
        """Create ``embeddings``, ``[num_classes, dim]``.

        Args:
          input_shape: ignored.
        """
        self.embeddings = self.add_weight(shape=(self.num_classes, self.dim), name="embeddings",
                                          initializer=keras.initializers.RandomNormal(0.0, 1.0))
        super().build(input_shape)

    def call(self, z, labels):
        """``concat([z, embed(labels)], -1)``.

        Args:
          z: float ``[batch, latent_dim]``.
          labels: int ``[batch]`` class indices.

        Returns:
          ``[batch, latent_dim + dim]``.
        """
        return tf.concat([z, tf.cast(tf.gather(self.embeddings, labels), z.dtype)], -1)

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "num_classes": self.num_classes, "dim": self.dim}


def projection(num_classes: int, channels: int, name: str = "projection"):
    """The projection discriminator's class embedding, as a spectrally normalised Dense.

    A bias-free ``Dense(num_classes)`` on D's pooled features ``h`` computes
    ``<V[:, y], h>`` for every class ``y`` at once; `projection_term` keeps the one of each
    image's label. Its kernel ``V`` ``[channels, num_classes]`` is the embedding (its
    transpose), so `spectral_norm.SpectralNorm` divides it by the same sigma that
    SNGAN's spectrally normalised embedding has. Xavier-uniform initialisation, as
    SNGAN's projection embedding.

    Args:
      num_classes: the number of classes (at least 2).
      channels: the width of D's pooled features (build the layer with ``(None, channels)``).
      name: the wrapper's name.
    """
    del channels  # the layer's input; kept in the signature so callers say what it takes
    dense = layers.Dense(check_num_classes(num_classes), use_bias=False,
                         kernel_initializer=conv_init(), name=f"{name}_inner")
    return spectrally_normalized(dense, name)


def projection_term(layer, features, labels, training=None):
    """``<embed(labels), features>`` per image: ``[batch, 1]``, to add to D's logit.

    Args:
      layer: the `projection` layer.
      features: float32 ``[batch, channels]``, D's pooled features.
      labels: int ``[batch]`` class indices.
      training: training mode (the spectral norm's power iteration runs).
    """
    scores = layer(features, training=training)  # [batch, num_classes]
    return tf.gather(scores, labels[:, None], batch_dims=1)
