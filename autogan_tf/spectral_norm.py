"""Spectral normalisation by reparameterisation, as PyTorch's ``spectral_norm`` and SNGAN."""

from __future__ import annotations

import random

import keras
import tensorflow as tf
from keras import layers

from autogan_tf import torch_layers

SN_EPSILON = 1e-12  # PyTorch's spectral_norm eps.


def l2_normalize(x, eps=SN_EPSILON):
    """``x / max(||x||, eps)``, PyTorch's ``F.normalize`` of a vector.

    Args:
      x: the vector.
      eps: the smallest norm divided by.
    """
    return x / tf.maximum(tf.norm(x), eps)


class SpectralNorm(layers.Wrapper):
    """Spectral normalisation by reparameterisation, as PyTorch's ``spectral_norm``.

    Wraps a ``Conv2D`` (channels_last) or ``Dense`` layer without activation and
    keeps its kernel W as the trained variable. Every forward uses W / sigma(W):

    * W is read as the matrix ``[out, in * kh * kw]`` (PyTorch's layout of
      its ``weight.view(out, -1)``), so ``u`` (``[out]``) and ``v``
      (``[in * kh * kw]``, order in, kh, kw) are PyTorch's ``weight_u`` and
      ``weight_v`` unchanged.
    * In training mode one power iteration ``v = n(W^T u), u = n(W v)``
      (n: divide by max(norm, 1e-12)) runs and is stored in ``u``/``v``;
      in inference mode the stored vectors are used as they are.
    * ``sigma = u . W v`` with ``u``, ``v`` constants: the gradient reaches W
      through sigma too (SNGAN), unlike `keras.layers.SpectralNormalization`,
      which writes W / sigma back into the kernel (a projection).

    Why: the official AutoGAN code (and SNGAN) train with this form; Adam then
    steps on the raw W, and sigma's gradient term is part of the dynamics.

    Precision: sigma, the power iteration and W / sigma are computed in
    float32 from the float32 kernel (``autocast=False``); only the normalised
    kernel and the bias are cast to the compute dtype (bfloat16 under
    ``models.set_precision``).

    tf.distribute: ``u`` and ``v`` are mirrored with aggregation
    ``only_first_replica``. Every replica holds the same W, u and v and so
    computes the same iteration; the update written is replica 0's, so the
    copies stay bit-identical whatever the reduction order.

    Args:
      layer: an unbuilt ``keras.layers.Conv2D`` or ``keras.layers.Dense``.
      power_iterations: power iterations per training-mode call (PyTorch's 1).
      eps: the normalisation's epsilon (PyTorch's 1e-12).
      **kwargs: passed to `keras.layers.Wrapper` (``autocast`` defaults to False).

    Raises:
      TypeError: ``layer`` is not a Conv2D or Dense (or is a Conv2DTranspose).
      ValueError: ``layer`` has an activation or is channels_first, or ``power_iterations``
        is below 1.
    """

    def __init__(self, layer, power_iterations: int = 1, eps: float = SN_EPSILON, **kwargs):
        if not isinstance(layer, (layers.Conv2D, layers.Dense)) or isinstance(
                layer, layers.Conv2DTranspose):
            raise TypeError(f"SpectralNorm wraps Conv2D or Dense, got {type(layer).__name__}")
        kwargs.setdefault("autocast", False)
        super().__init__(layer, **kwargs)
        if layer.activation not in (None, keras.activations.linear):
            raise ValueError("SpectralNorm: the wrapped layer must have no activation")
        if isinstance(layer, layers.Conv2D) and layer.data_format != "channels_last":
            raise ValueError("SpectralNorm: Conv2D must be channels_last")
        if power_iterations < 1:
            raise ValueError(f"power_iterations must be >= 1, got {power_iterations}")
        self.power_iterations = int(power_iterations)
        self.eps = float(eps)

    def build(self, input_shape):
        """Build the wrapped layer (if needed) and create ``u`` and ``v`` (unit vectors).

        Args:
          input_shape: the input's shape, passed to the wrapped layer.
        """
        super().build(input_shape)  # the wrapped layer
        shape = self.layer.kernel.shape
        out = shape[-1]
        rest = 1
        for dim in shape[:-1]:
            rest *= dim
        self.u = self.add_weight(shape=(out,), initializer=unit_normal, trainable=False,
                                 name="u", dtype="float32", autocast=False,
                                 aggregation="only_first_replica")
        self.v = self.add_weight(shape=(rest,), initializer=unit_normal, trainable=False,
                                 name="v", dtype="float32", autocast=False,
                                 aggregation="only_first_replica")
        self.input_spec = self.layer.input_spec
        self.built = True

    def _kernel_rows(self):
        """The float32 kernel as ``[kh * kw * in, out]`` (Dense: ``[in, out]``).

        This is ``W`` transposed with its rows in the kernel's own memory order, so
        reading it needs no copy: the power iteration reorders the small vector ``v``
        instead of transposing the kernel into PyTorch's layout at every call (those
        transposes and their gradients were 3 % of a search step at 8 px).
        """
        kernel = tf.cast(tf.convert_to_tensor(self.layer.kernel), tf.float32)
        return tf.reshape(kernel, [-1, kernel.shape[-1]])

    def _reorder(self, v, to_torch: bool):
        """``v`` between PyTorch's order ``(in, kh, kw)`` and the kernel's ``(kh, kw, in)``.

        Args:
          v: a vector of ``in * kh * kw`` entries.
          to_torch: from the kernel's order to PyTorch's (else the other way).
        """
        shape = self.layer.kernel.shape
        if len(shape) == 2:  # Dense: one input axis, the same order in both
            return v
        kh, kw, channels = shape[0], shape[1], shape[2]
        if to_torch:
            return tf.reshape(tf.transpose(tf.reshape(v, [kh, kw, channels]), [2, 0, 1]), [-1])
        return tf.reshape(tf.transpose(tf.reshape(v, [channels, kh, kw]), [1, 2, 0]), [-1])

    def sigma(self, training=False):
        """sigma(W) = u . W v; in training mode after ``power_iterations`` steps (stored).

        Its ops live in a "sigma" name scope (per batch, not per image: MAC
        counts leave them out).

        Args:
          training: run the power iteration and store ``u``/``v`` first.

        Returns:
          A float32 scalar tensor.
        """
        with tf.name_scope("sigma"):
            return self._sigma(training)

    def _sigma(self, training):
        rows = self._kernel_rows()  # W^T, rows in the kernel's order: W v = rows^T v
        u = tf.convert_to_tensor(self.u)
        v = tf.convert_to_tensor(self.v)
        if training:
            rows_const = tf.stop_gradient(rows)
            for _ in range(self.power_iterations):
                v = l2_normalize(self._reorder(tf.linalg.matvec(rows_const, u), True), self.eps)
                u = l2_normalize(tf.linalg.matvec(rows_const, self._reorder(v, False),
                                                  transpose_a=True), self.eps)
            self.u.assign(u)
            self.v.assign(v)
        return tf.tensordot(u, tf.linalg.matvec(rows, self._reorder(v, False), transpose_a=True), 1)

    def normalized_kernel(self, training=False):
        """W / sigma(W) in float32, in the wrapped layer's kernel shape.

        Args:
          training: run the power iteration (see `sigma`).
        """
        kernel = tf.cast(tf.convert_to_tensor(self.layer.kernel), tf.float32)
        return kernel / self.sigma(training)

    def call(self, inputs, training=None):
        """The wrapped layer's op with W / sigma(W) as its kernel, plus its bias.

        Args:
          inputs: NHWC images (Conv2D) or ``[batch, in]`` (Dense).
          training: run ``power_iterations`` power iterations first and store ``u``, ``v``.

        Returns:
          The outputs in the compute dtype.
        """
        dtype = self.compute_dtype
        inputs = tf.cast(inputs, dtype)
        kernel = tf.cast(self.normalized_kernel(bool(training)), dtype)
        if isinstance(self.layer, layers.Conv2D):
            outputs = self.layer.convolution_op(inputs, kernel)
        else:
            outputs = tf.matmul(inputs, kernel)
        if self.layer.use_bias:
            outputs = outputs + tf.cast(tf.convert_to_tensor(self.layer.bias), dtype)
        return outputs

    def compute_output_shape(self, input_shape):
        """The wrapped layer's output shape for ``input_shape``.

        Args:
          input_shape: the input's shape.
        """
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        """The constructor arguments (the wrapped layer serialised by `keras.layers.Wrapper`)."""
        return {**super().get_config(), "power_iterations": self.power_iterations,
                "eps": self.eps}


def unit_normal(shape, dtype=None):
    """A N(0, 1) vector scaled to unit length (PyTorch's initial ``u`` and ``v``).

    The seed comes from Python's `random`, as Keras's own unseeded initializers take
    theirs: a model built under `seeds.python_random` gets the same vectors in
    every process. (Keras's global seed generator would depend on how many draws the
    process made before, so a search resumed after a restart re-initialised its
    discriminator differently from an uninterrupted one.)
    """
    x = keras.random.normal(shape, dtype="float32", seed=random.randint(1, 2 ** 31 - 1))
    return tf.cast(l2_normalize(x), dtype or "float32")


def spectrally_normalized(layer, name):
    """``layer`` wrapped in a `SpectralNorm` with one power iteration per call (PyTorch's).

    Args:
      layer: an unbuilt Conv2D or Dense layer.
      name: the wrapper's name (the wrapped layer keeps its own).
    """
    return SpectralNorm(layer, power_iterations=1, name=name)


def sn_conv(channels, kernel, name, in_channels=None):
    """A spectrally normalised 'same' convolution with PyTorch's initialisation.

    Args:
      channels: output channels.
      kernel: the kernel side.
      name: the wrapper's name; the convolution is ``<name>_inner``.
      in_channels: input channels, for the bias bound (default ``channels``).
    """
    return spectrally_normalized(
        torch_layers.conv(channels, kernel, f"{name}_inner", in_channels=in_channels), name)
