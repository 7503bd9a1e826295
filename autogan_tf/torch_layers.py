"""Keras layers and initialisers that compute what the official PyTorch code computes.

The official AutoGAN code trains PyTorch modules with PyTorch's defaults; the
golden tests compare our steps with its steps, so these building blocks match
them where Keras differs:

* initialisers: PyTorch's default kaiming-uniform ``a=sqrt(5)`` (`torch_default_init`),
  its bias bound from the *weight's* fan-in (`torch_bias_init`), and the official
  code's Xavier-uniform convolution kernels (`conv_init`);
* `TorchBatchNorm`: PyTorch's momentum, epsilon and unbiased running variance;
* factories of the generator's convolutions, transposed convolutions, batch and
  (affine-free) instance norm with those settings.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf
from keras import layers

from autogan_tf import keras_compat

BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1 in Keras' convention.
NORM_EPSILON = 1e-5  # PyTorch's default for BatchNorm2d and InstanceNorm2d.


def conv_init():
    """Xavier-uniform, as the official ``--init_type xavier_uniform`` (``Conv2d`` kernels only)."""
    return keras.initializers.GlorotUniform()


def torch_default_init():
    """PyTorch's default initialiser of a ``Linear``/``Conv2d``/``ConvTranspose2d`` weight.

    PyTorch draws it from kaiming-uniform with ``a=sqrt(5)``, i.e.
    U(+-1/sqrt(fan_in)). Keras' ``VarianceScaling(1/3, "fan_in", "uniform")``
    gives the same bound sqrt(3 * (1/3) / fan_in) for a Keras *kernel*:

    * Dense kernel ``[in, out]``: fan_in = in, as PyTorch's ``Linear``.
    * Conv2D kernel ``[kh, kw, in, out]``: fan_in = kh*kw*in, as ``Conv2d``.
    * Conv2DTranspose kernel ``[kh, kw, out, in]``: Keras takes fan_in =
      kh*kw*out, and PyTorch computes the fan_in of a ``ConvTranspose2d``
      weight ``[in, out, kh, kw]`` from its dimension 1, also kh*kw*out.

    Not for biases: on a 1-D shape Keras takes fan_in = the bias length;
    use `torch_bias_init` with the kernel's fan_in.
    """
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")


def torch_bias_init(fan_in: int):
    """PyTorch's default bias initialiser: U(+-1/sqrt(fan_in)), fan_in of the layer's *weight*.

    ``fan_in``: in_features (Linear), in*kh*kw (Conv2d), out*kh*kw
    (ConvTranspose2d: PyTorch takes dimension 1 of its ``[in, out, kh, kw]``
    weight). The official code never re-initialises biases, so every bias
    of G and D has this distribution.

    Args:
      fan_in: the fan-in of the layer's weight, as above.

    Returns:
      A `keras.initializers.RandomUniform`.
    """
    bound = 1.0 / float(fan_in) ** 0.5
    return keras.initializers.RandomUniform(-bound, bound)


class TorchBatchNorm(layers.BatchNormalization):
    """Batch norm whose moving variance tracks the *unbiased* batch variance, as PyTorch's.

    Both frameworks normalise a training batch with its biased variance; PyTorch's
    ``BatchNorm2d`` updates ``running_var`` with the unbiased one (times
    n / (n - 1), n = elements per channel: batch * height * width, over all
    replicas when synchronized), Keras with the biased one. Inference-mode
    outputs (the evaluated and exported generator) depend on it.
    Masks and batch renormalisation are not supported.

    The constructor takes `keras.layers.BatchNormalization`'s arguments (``synchronized``
    included).

    ``update_moving_statistics`` (an attribute, read when a call is traced; see
    `batch_statistics_only`) set to False keeps training mode's normalisation by the
    batch statistics but leaves the moving ones untouched.
    """

    update_moving_statistics = True

    def _update_moving(self, mean, unbiased):
        if not self.update_moving_statistics:
            return
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum
                                    + unbiased * (1.0 - momentum))

    def call(self, inputs, training=None, mask=None):
        """Normalise ``inputs``; in training mode also update the moving statistics.

        Inference mode (or a frozen layer) is Keras' own batch norm.

        Args:
          inputs: the tensor to normalise (channels on ``axis``).
          training: use the batch statistics and update the moving ones.
          mask: must be None in training mode.

        Returns:
          The normalised tensor in the layer's compute dtype.

        Raises:
          NotImplementedError: a mask or ``renorm`` in training mode.
        """
        if not (training and self.trainable):
            return super().call(inputs, training=training, mask=mask)
        if mask is not None or self.renorm:
            raise NotImplementedError("TorchBatchNorm supports neither masks nor renorm")
        if not self.synchronized and inputs.shape.rank == 4 and self.axis in (-1, 3, [3]):
            return self._fused_training_call(inputs)
        x = tf.cast(inputs, tf.float32)
        mean, variance = self._moments(x, None)
        n = tf.cast(tf.size(x) // tf.shape(x)[self.axis], tf.float32)
        if self.synchronized:
            n *= tf.distribute.get_replica_context().num_replicas_in_sync
        self._update_moving(mean, variance * n / tf.maximum(n - 1.0, 1.0))
        outputs = tf.nn.batch_normalization(
            x, mean, variance, tf.convert_to_tensor(self.beta) if self.center else None,
            tf.convert_to_tensor(self.gamma) if self.scale else None, self.epsilon)
        return tf.cast(outputs, self.compute_dtype)

    def _fused_training_call(self, inputs):
        """Training mode as one fused kernel (NHWC, one replica): `FusedBatchNormV3`.

        The kernel normalises with the biased batch variance and returns the unbiased one,
        exactly PyTorch's pair, takes bfloat16 activations with float32 statistics, and
        has a fused gradient: the unfused version spent 9 % of a supernet step in its
        reductions, casts and element-wise ops (bench/profile_step.py). Called as the raw
        op so that ``epsilon`` stays PyTorch's 1e-5 (`tf.nn.fused_batch_norm` raises it to
        1.001e-5). Synchronized batch norm keeps the generic path (statistics summed over
        replicas).
        """
        channels = inputs.shape[-1]
        gamma = (tf.convert_to_tensor(self.gamma) if self.scale
                 else tf.ones([channels], tf.float32))
        beta = (tf.convert_to_tensor(self.beta) if self.center
                else tf.zeros([channels], tf.float32))
        outputs, mean, unbiased, *_ = tf.raw_ops.FusedBatchNormV3(
            x=tf.cast(inputs, self.compute_dtype), scale=tf.cast(gamma, tf.float32),
            offset=tf.cast(beta, tf.float32), mean=tf.zeros([0]), variance=tf.zeros([0]),
            epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
            is_training=True)
        self._update_moving(mean, unbiased)
        return outputs


@contextlib.contextmanager
def batch_statistics_only(model):
    """Within the block, ``model``'s batch norms in training mode do not update their moving
    statistics (for calls traced inside it).

    Scoring one architecture of a weight-sharing supernet in inference mode normalises it
    by moving statistics that every architecture trained since has moved, and the shared
    ``ToRGB`` norm's by all of them; with this block and ``training=True`` each candidate
    is normalised by its own batch statistics, and the shared training is not disturbed
    (the BN recalibration of Guo et al., "Single Path One-Shot NAS", 2020, without its
    extra passes).

    Args:
      model: a Keras layer or model; every `TorchBatchNorm` inside it is switched.
    """
    norms = [layer for layer in keras_compat.sublayers(model)
             if isinstance(layer, TorchBatchNorm)]
    for layer in norms:
        layer.update_moving_statistics = False
    try:
        yield norms
    finally:
        for layer in norms:
            layer.update_moving_statistics = True


def batch_norm(name, synchronized=False, affine=True):
    """PyTorch's ``BatchNorm2d`` as the official code initialises it: gamma ~ N(1, 0.02).

    Args:
      name: the layer's name.
      synchronized: batch statistics over all replicas of a `tf.distribute` strategy, so a
        multi-replica step normalises as one device would.
      affine: learn a scale and shift (False: a class-conditional model's, whose
        `conditional.ClassAffine` follows with one per class).
    """
    return TorchBatchNorm(
        momentum=BN_MOMENTUM, epsilon=NORM_EPSILON, name=name, synchronized=synchronized,
        center=affine, scale=affine, gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02))


def instance_norm(channels, name):
    """PyTorch's ``InstanceNorm2d`` (no affine): one group per channel.

    Args:
      channels: the input's channels.
      name: the layer's name.
    """
    return layers.GroupNormalization(groups=channels, epsilon=NORM_EPSILON, center=False,
                                     scale=False, name=name)


def conv(channels, kernel, name, in_channels=None):
    """A 'same' Conv2D: Xavier-uniform kernel (official ``weights_init``), PyTorch-default bias.

    ``in_channels`` (default ``channels``) sets the bias bound 1/sqrt(in*k*k).
    """
    fan_in = (in_channels or channels) * kernel * kernel
    return layers.Conv2D(channels, kernel, padding="same", kernel_initializer=conv_init(),
                         bias_initializer=torch_bias_init(fan_in), name=name)


def deconv(channels, name):
    """A 2x2 stride-2 transposed conv with PyTorch's defaults for kernel and bias.

    The official ``weights_init`` matches class names containing 'Conv2d',
    which 'ConvTranspose2d' does not, so these keep PyTorch's initialisation:
    kernel and bias U(+-1/sqrt(out * 2 * 2)) (fan_in from weight dimension 1).
    """
    return layers.Conv2DTranspose(channels, 2, strides=2, kernel_initializer=torch_default_init(),
                                  bias_initializer=torch_bias_init(channels * 4), name=name)
