"""The blocks of the SNGAN ResNet discriminator that AutoGAN trains its generators against."""

from __future__ import annotations

import tensorflow as tf
from keras import layers

from autogan_tf.spectral_norm import sn_conv


def downsample(x):
    """2x2 average pooling.

    Args:
      x: NHWC tensor.
    """
    return tf.nn.avg_pool2d(x, 2, 2, "VALID")


class OptimizedDisBlock(layers.Layer):
    """The first D block: conv -> ReLU -> conv -> pool, plus pool -> 1x1 conv shortcut.

    ``in_channels``: the image channels (3); sets the first convs' bias bounds.

    Args:
      channels: the block's output width (df_dim).
      in_channels: as above.
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, channels: int, in_channels: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = layers.InputSpec(ndim=4, axes={-1: in_channels})
        self.channels = channels
        self.in_channels = in_channels
        self.c1 = sn_conv(channels, 3, "c1", in_channels=in_channels)
        self.c2 = sn_conv(channels, 3, "c2")
        self.c_sc = sn_conv(channels, 1, "c_sc", in_channels=in_channels)

    def build(self, input_shape):
        """Build the three spectrally normalised convs.

        Args:
          input_shape: the image batch's shape, NHWC.
        """
        self.c1.build(input_shape)
        self.c2.build(tuple(input_shape[:-1]) + (self.channels,))
        self.c_sc.build(input_shape)
        super().build(input_shape)

    def call(self, x, training=None):
        """The block's output at half the input side.

        Args:
          x: images ``[batch, H, W, in_channels]``.
          training: spectral norm's power iteration runs.

        Returns:
          ``[batch, H / 2, W / 2, channels]``.
        """
        h = downsample(self.c2(tf.nn.relu(self.c1(x, training=training)), training=training))
        return h + self.c_sc(downsample(x), training=training)

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "channels": self.channels,
                "in_channels": self.in_channels}


class DisBlock(layers.Layer):
    """ReLU -> conv -> ReLU -> conv [-> pool], plus a learnable shortcut when downsampling.

    Without downsampling the shortcut is the identity.

    Args:
      channels: the block's width (input and output).
      downsample: halve the side with 2x2 average pooling.
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(self, channels: int, downsample: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = layers.InputSpec(ndim=4, axes={-1: channels})
        self.channels = channels
        self.downsample = downsample
        self.c1 = sn_conv(channels, 3, "c1")
        self.c2 = sn_conv(channels, 3, "c2")
        # In AutoGAN's D all blocks have the same width, so the shortcut is learnable
        # exactly when the block downsamples.
        self.c_sc = sn_conv(channels, 1, "c_sc") if downsample else None

    def build(self, input_shape):
        """Build the convs (and the shortcut conv when downsampling).

        Args:
          input_shape: the input's shape, NHWC with ``channels`` channels.
        """
        self.c1.build(input_shape)
        self.c2.build(input_shape)
        if self.c_sc is not None:
            self.c_sc.build(input_shape)
        super().build(input_shape)

    def call(self, x, training=None):
        """The block's output.

        Args:
          x: NHWC feature map with ``channels`` channels.
          training: spectral norm's power iteration runs.

        Returns:
          The same shape as ``x``, or half its side when downsampling.
        """
        h = self.c1(tf.nn.relu(x), training=training)
        h = self.c2(tf.nn.relu(h), training=training)
        if not self.downsample:
            return h + x
        return downsample(h) + downsample(self.c_sc(x, training=training))

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "channels": self.channels,
                "downsample": self.downsample}


class MinibatchStd(layers.Layer):
    """Appends how varied the batch is as one more feature map (Karras et al., ICLR 2018).

    The batch is split into groups of ``group_size`` images; for every group, the standard
    deviation of each feature over the group's members is averaged into one number, which
    becomes an extra channel of each member. A discriminator that sees the spread of a batch
    can tell a generator that draws one kind of image from the data, which is what keeps a
    short GAN run from collapsing onto a few classes. Not part of AutoGAN: off by default.

    Args:
      group_size: images per group (2 or more); a batch smaller than it is one group, a
        larger batch must be a multiple of it.
      **kwargs: passed to `keras.layers.Layer`.

    Raises:
      ValueError: ``group_size`` below 2.
    """

    def __init__(self, group_size: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = layers.InputSpec(ndim=4)
        if group_size < 2:
            raise ValueError(f"group_size must be at least 2, got {group_size}")
        self.group_size = group_size

    def call(self, x):
        """``x`` with the spread of its group as a last channel.

        Args:
          x: NHWC features; the batch is a multiple of ``group_size`` or smaller than it.

        Returns:
          ``[batch, H, W, C + 1]`` in ``x``'s dtype.
        """
        shape = tf.shape(x)
        batch = shape[0]
        group = tf.minimum(self.group_size, batch)
        tf.debugging.assert_equal(
            batch % group, 0, message=f"MinibatchStd: the batch must be a multiple of "
                                      f"group_size={self.group_size}")
        # Image i is member i // (batch // group) of group i % (batch // group): strided groups.
        y = tf.reshape(tf.cast(x, tf.float32), tf.concat([[group, -1], shape[1:]], 0))
        y = y - tf.reduce_mean(y, axis=0, keepdims=True)
        y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)
        y = tf.reduce_mean(y, axis=[1, 2, 3])
        y = tf.tile(y, [group])
        y = tf.broadcast_to(y[:, None, None, None], tf.concat([shape[:3], [1]], 0))
        return tf.concat([x, tf.cast(y, x.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        """The input's shape with one more channel."""
        return (*input_shape[:-1], None if input_shape[-1] is None else input_shape[-1] + 1)

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        return {**super().get_config(), "group_size": self.group_size}
