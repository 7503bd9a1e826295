"""Hinge GAN losses (Lim & Ye 2017; Miyato et al. 2018), as AutoGAN trains with."""

import tensorflow as tf


def _check_logits(logits, name):
    logits = tf.convert_to_tensor(logits)
    if logits.shape.rank not in (None, 1, 2) or (logits.shape.rank == 2 and logits.shape[-1] != 1):
        raise ValueError(f"{name} must have shape [batch] or [batch, 1], got {logits.shape}")
    return tf.cast(tf.reshape(logits, [-1]), tf.float32)


def discriminator_hinge_loss(real_logits, fake_logits):
    """mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))), in float32.

    The logits are cast to float32 first, so the loss is computed in full precision even when
    the discriminator runs in mixed precision.

    Args:
      real_logits: the discriminator's outputs on real images, shape ``[batch]`` or
        ``[batch, 1]``.
      fake_logits: its outputs on generated images, same shapes allowed.

    Returns:
      A float32 scalar tensor.

    Raises:
      ValueError: when either logits tensor has another shape.
    """
    real = _check_logits(real_logits, "real_logits")
    fake = _check_logits(fake_logits, "fake_logits")
    return tf.reduce_mean(tf.nn.relu(1.0 - real)) + tf.reduce_mean(tf.nn.relu(1.0 + fake))


def generator_hinge_loss(fake_logits):
    """-mean(D(G(z))), in float32.

    Args:
      fake_logits: the discriminator's outputs on generated images, shape ``[batch]`` or
        ``[batch, 1]``.

    Returns:
      A float32 scalar tensor.

    Raises:
      ValueError: when ``fake_logits`` has another shape.
    """
    return -tf.reduce_mean(_check_logits(fake_logits, "fake_logits"))
