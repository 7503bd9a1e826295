"""Differentiable augmentation of the discriminator's inputs (DiffAugment, Zhao et al. 2020).

With a small data set the discriminator memorises the real images and its feedback to the
generator stops meaning anything. DiffAugment shows D every image, real or generated,
through random transformations, in D's steps and in G's step alike; the transformations
are differentiable, so G's gradient flows back through them to G. D then never sees the
same real image twice, and G is not pushed to produce augmented-looking images, because
its images are transformed in the same way before D judges them.

A *policy* names the transformation families, applied in the order given
(``--augment=translation,color,cutout``; `config.AUGMENTATIONS`). Images are NHWC in
[-1, 1]; every parameter is drawn per image:

* ``color``: brightness ``x + b`` with ``b ~ U(-0.5, 0.5)``; then saturation: each pixel's
  deviation from its mean over the channels scaled by ``s ~ U(0, 2)``; then contrast: the
  deviation from the image's mean over all pixels and channels scaled by
  ``c ~ U(0.5, 1.5)``. No clipping (D takes any value).
* ``translation``: a shift by up to 1/8 of the side (rounded: 4 px at 32 px), each axis
  independently, an integer from ``-m .. m`` uniformly; pixels shifted in from outside
  are 0 (zero padding).
* ``cutout``: a square of half the side (rounded up) set to 0, its centre uniform over
  the pixels; the part of it past the border is dropped.

Real and generated batches get independent draws from the same family (what DiffAugment
does): D never sees a real image and a generated one under the same transformation, but
both under transformations of one distribution, so the transformation tells D nothing
about which is which.

Randomness is split in two: `draw` turns a stateless seed into uniform variates in
[0, 1), one row per image; `apply` turns them into parameters and transforms the images.
The training step draws the variates of a whole (global) batch once and gives every
replica its rows, so a multi-replica step augments exactly as a one-device step does.
`augment` is both at once. With a fixed seed everything is deterministic.
"""

from __future__ import annotations

import tensorflow as tf

from autogan_tf.config import AUGMENTATIONS, augment_policy

# Uniform variates each transformation family takes per image, in this order.
_VARIATES = {"color": 3, "translation": 2, "cutout": 2}  # (b, s, c), (dy, dx), (cy, cx)


# -- the transformations, from their definitions ----------------------------------------------
def adjust_brightness(images, delta):
    """``images + delta``, per image.

    Args:
      images: ``[B, H, W, C]``.
      delta: ``[B]`` offsets.

    Returns:
      The images, same shape and dtype.
    """
    return images + tf.cast(delta, images.dtype)[:, None, None, None]


def adjust_saturation(images, factor):
    """Each pixel's deviation from its mean over the channels, scaled by ``factor``.

    Args:
      images: ``[B, H, W, C]``.
      factor: ``[B]`` scales (0: grey, 1: unchanged).

    Returns:
      The images, same shape and dtype.
    """
    mean = tf.reduce_mean(images, axis=3, keepdims=True)
    return (images - mean) * tf.cast(factor, images.dtype)[:, None, None, None] + mean


def adjust_contrast(images, factor):
    """Each image's deviation from its own mean (over pixels and channels), scaled by ``factor``.

    Args:
      images: ``[B, H, W, C]``.
      factor: ``[B]`` scales (0: flat, 1: unchanged).

    Returns:
      The images, same shape and dtype.
    """
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return (images - mean) * tf.cast(factor, images.dtype)[:, None, None, None] + mean


def translate(images, shifts):
    """Shift each image by whole pixels, filling with 0 what comes in from outside.

    ``out[b, y, x] = images[b, y - dy_b, x - dx_b]`` where that pixel exists, else 0:
    a positive ``dy`` moves the content down, a positive ``dx`` to the right.

    Args:
      images: ``[B, H, W, C]``.
      shifts: int ``[B, 2]``: ``(dy, dx)`` per image.

    Returns:
      The shifted images, same shape and dtype.
    """
    shifts = tf.cast(shifts, tf.int32)
    return _shift_axis(_shift_axis(images, shifts[:, 0], axis=1), shifts[:, 1], axis=2)


def _shift_axis(images, shift, axis: int):
    """`translate` along one spatial axis (1: rows, 2: columns)."""
    size = tf.shape(images)[axis]
    source = tf.range(size)[None, :] - shift[:, None]  # [B, size]: where each pixel comes from
    inside = (source >= 0) & (source < size)
    moved = tf.gather(images, tf.clip_by_value(source, 0, size - 1), axis=axis, batch_dims=1)
    inside = inside[:, :, None, None] if axis == 1 else inside[:, None, :, None]
    return tf.where(inside, moved, tf.zeros_like(moved))


def cut_out(images, centres, size):
    """Set a ``size`` x ``size`` square of each image to 0.

    The square covers rows ``cy - size // 2 .. cy - size // 2 + size - 1`` (and columns
    likewise from ``cx``); the part of it outside the image is dropped.

    Args:
      images: ``[B, H, W, C]``.
      centres: int ``[B, 2]``: ``(cy, cx)`` per image.
      size: the square's side in pixels (a Python int or a scalar tensor).

    Returns:
      The images, same shape and dtype.
    """
    centres = tf.cast(centres, tf.int32)
    start = centres - size // 2  # [B, 2]: top, left

    def covered(axis):  # [B, side]: whether each row (column) lies in the square
        index = tf.range(tf.shape(images)[axis])[None, :]
        first = start[:, axis - 1, None]
        return (index >= first) & (index < first + size)

    square = covered(1)[:, :, None, None] & covered(2)[:, None, :, None]
    return tf.where(square, tf.zeros_like(images), images)


def max_shift(side):
    """The largest translation at an image side: 1/8 of it, rounded (32 px: 4, 8 px: 1).

    Args:
      side: the image side in pixels (a Python int or a scalar int tensor).
    """
    return (side + 4) // 8


def cutout_size(side):
    """The side of the cutout square: half the image side, rounded up (32 px: 16).

    Args:
      side: the image side in pixels (a Python int or a scalar int tensor).
    """
    return (side + 1) // 2


# -- the random families: uniform variates -> parameters -> transformation ----------------------
def color(images, variates):
    """Random brightness, saturation and contrast (the module docstring's ``color``).

    Args:
      images: ``[B, H, W, 3]`` in [-1, 1].
      variates: ``[B, 3]`` uniform in [0, 1): brightness, saturation, contrast.

    Returns:
      The transformed images.
    """
    images = adjust_brightness(images, variates[:, 0] - 0.5)
    images = adjust_saturation(images, variates[:, 1] * 2.0)
    return adjust_contrast(images, variates[:, 2] + 0.5)


def translation(images, variates):
    """A random shift by up to `max_shift` pixels per axis, zero padded.

    Args:
      images: ``[B, H, W, C]``.
      variates: ``[B, 2]`` uniform in [0, 1): rows, columns.

    Returns:
      The shifted images.
    """
    sides = tf.shape(images)[1:3]
    reach = max_shift(sides)  # [2]
    shifts = tf.cast(tf.floor(variates * tf.cast(2 * reach + 1, variates.dtype)), tf.int32)
    return translate(images, tf.minimum(shifts, 2 * reach) - reach)


def cutout(images, variates):
    """A zero square of `cutout_size` at a random centre per image.

    Args:
      images: ``[B, H, W, C]``.
      variates: ``[B, 2]`` uniform in [0, 1): the centre's row and column.

    Returns:
      The images with their squares cut out.
    """
    sides = tf.shape(images)[1:3]
    centres = tf.cast(tf.floor(variates * tf.cast(sides, variates.dtype)), tf.int32)
    return cut_out(images, tf.minimum(centres, sides - 1), cutout_size(sides[0]))


_FAMILIES = {"color": color, "translation": translation, "cutout": cutout}


# -- a policy -----------------------------------------------------------------------------------
def draw(policy, batch_size, seed) -> dict:
    """The uniform variates of ``policy`` for ``batch_size`` images.

    Each family draws from its own stream of ``seed`` (its index in
    `config.AUGMENTATIONS` folded in), so ``color`` draws the same numbers whatever else
    the policy holds.

    Args:
      policy: a ``--augment`` value or a tuple of family names.
      batch_size: how many images (a Python int or a scalar int tensor).
      seed: an int ``[2]`` seed of TensorFlow's stateless random ops.

    Returns:
      Family name -> float32 ``[batch_size, k]`` in [0, 1); empty for an empty policy.
    """
    variates = {}
    for name in augment_policy(policy):
        stream = tf.random.experimental.stateless_fold_in(seed, AUGMENTATIONS.index(name))
        variates[name] = tf.random.stateless_uniform([batch_size, _VARIATES[name]], stream)
    return variates


def apply(images, policy, variates: dict):
    """Transform ``images`` by ``policy`` with the given variates (`draw`'s rows for them).

    Computed in float32 whatever the images' dtype (bfloat16 means would round) and
    returned in it.

    Args:
      images: ``[B, H, W, 3]`` in [-1, 1].
      policy: a ``--augment`` value or a tuple of family names.
      variates: family name -> ``[B, k]`` uniform variates, as `draw` returns.

    Returns:
      The transformed images, same shape and dtype; ``images`` itself for an empty policy.
    """
    names = augment_policy(policy)
    if not names:
        return images
    x = tf.cast(images, tf.float32)
    for name in names:
        x = _FAMILIES[name](x, tf.cast(variates[name], tf.float32))
    return tf.cast(x, images.dtype)


def augment(images, policy, seed):
    """``apply(images, policy, draw(policy, batch, seed))``: one random augmentation.

    Args:
      images: ``[B, H, W, 3]`` in [-1, 1].
      policy: a ``--augment`` value or a tuple of family names.
      seed: an int ``[2]`` stateless seed.

    Returns:
      The transformed images.
    """
    return apply(images, policy, draw(policy, tf.shape(images)[0], seed))
