"""From (generator, number, seed) to images: the one path every image is drawn by.

Evaluation (IS/FID during training and in ``autogan-evaluate``), the search's
rewards, the quick start, `api.generate`, ``autogan-sample`` and the exported
SavedModel's ``generate`` signature all draw their noise here, so a seed names
one fixed list of images everywhere.

Row ``i`` of a seed's noise is ``stateless_normal([latent_dim], seed=(seed, i))``:
it depends on the seed and on ``i`` alone. Images are therefore the same
whatever the batch size they are generated in, however many images are asked
for, and however many replicas share the work (up to the rounding of the
convolutions, which can differ by a unit in the last place between batch
sizes). Keyed by the batch's first index instead, as it once was, the same
generator and seed gave other images, IS and FID when ``--eval_batch_size``
changed.

A class-conditional generator (`autogan_tf.conditional`) is asked for class ``i mod K`` in
row ``i`` unless the caller names the classes: every class equally often, whatever the batch
size, so IS, FID and the requested-class accuracy score class-balanced samples.

A generator in inference mode maps each row on its own. Batch norm in
training mode (the search's ``--reward_bn=batch``) normalises by the batch,
and then the batch size is part of the result by design.
"""

from __future__ import annotations

import numpy as np

from autogan_tf.images import to_uint8


def latents(seed, start, count, latent_dim: int):
    """Rows ``start .. start + count - 1`` of the noise that ``seed`` names.

    Works eagerly (compiled once per ``latent_dim``) and inside a `tf.function` (the
    exported model draws its noise with it).

    Args:
      seed: an int (or int scalar tensor), cast to int64.
      start: the index of the first row (int or scalar tensor).
      count: how many rows (int or scalar tensor, >= 0).
      latent_dim: the width of a row.

    Returns:
      float32 ``[count, latent_dim]``; row ``k`` is row ``start + k`` of the seed's list.
    """
    import tensorflow as tf

    args = [tf.cast(x, tf.int64) for x in (seed, start, count)]
    if tf.executing_eagerly():
        return _compiled_latents(int(latent_dim))(*args)
    return _latents(*args, int(latent_dim))


def _latents(seed, start, count, latent_dim):
    import tensorflow as tf

    def row(i):
        return tf.random.stateless_normal([latent_dim], seed=tf.stack([seed, i]))

    return tf.map_fn(row, tf.range(start, start + count),
                     fn_output_signature=tf.TensorSpec([latent_dim], tf.float32))


_COMPILED = {}


def _compiled_latents(latent_dim: int):
    """`_latents` as a `tf.function` for one ``latent_dim`` (eager map_fn runs row by row)."""
    import tensorflow as tf

    if latent_dim not in _COMPILED:
        spec = tf.TensorSpec([], tf.int64)
        _COMPILED[latent_dim] = tf.function(
            lambda seed, start, count: _latents(seed, start, count, latent_dim),
            input_signature=[spec, spec, spec], autograph=False)
    return _COMPILED[latent_dim]


def balanced_labels(start: int, count: int, num_classes: int) -> np.ndarray:
    """The classes a conditional generator is asked for in rows ``start .. start + count - 1``
    when the caller names none: row ``i`` gets ``i mod num_classes``.

    Args:
      start: the first row's index.
      count: how many rows.
      num_classes: the generator's classes.

    Returns:
      int32 ``[count]``.
    """
    return (np.arange(start, start + count) % num_classes).astype(np.int32)


def random_labels(seed, start, count, num_classes: int):
    """Random classes for rows ``start .. start + count - 1`` of ``seed`` (the exported
    ``generate`` signature's label -1): row ``i``'s class depends on the seed and on ``i``
    alone, from a stream folded off the row's noise seed, so it is not a function of ``z``.

    Works inside a `tf.function` (and eagerly).

    Args:
      seed: an int (or int scalar tensor).
      start: the first row's index.
      count: how many rows.
      num_classes: the generator's classes.

    Returns:
      int32 ``[count]`` in ``0 .. num_classes - 1``.
    """
    import tensorflow as tf

    seed, start, count = (tf.cast(x, tf.int64) for x in (seed, start, count))

    def row(i):
        key = tf.random.experimental.stateless_fold_in(tf.stack([seed, i]), _LABEL_STREAM)
        return tf.random.stateless_uniform([], key, 0, num_classes, dtype=tf.int32)

    return tf.map_fn(row, tf.range(start, start + count),
                     fn_output_signature=tf.TensorSpec([], tf.int32))


_LABEL_STREAM = 1  # folded into a row's seed for its random class


class ImageSampler:
    """uint8 images of a generator for a seed, batch by batch, split across replicas.

    Args:
      generate: ``generate(z, *shared) -> images`` in [-1, 1] (float) for noise ``z``
        ``[n, latent_dim]``; ``shared`` are extra inputs every batch gets (the supernet's
        architecture). With ``num_classes``: ``generate(z, labels, *shared)``.
      latent_dim: the width of ``z``.
      batch_size: images generated per call.
      strategy: a `tf.distribute` strategy whose replicas share each batch (None: the
        current one).
      num_classes: 0, or the classes of a conditional generator (`balanced_labels` unless
        the caller names them).
    """

    def __init__(self, generate, latent_dim: int, batch_size: int = 100, strategy=None,
                 num_classes: int = 0):
        import tensorflow as tf

        from autogan_tf import distribute

        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.latent_dim = int(latent_dim)
        self.batch_size = int(batch_size)
        self.num_classes = int(num_classes)
        strategy = strategy or tf.distribute.get_strategy()
        if self.num_classes:
            # The labels ride in z's last column (a float32 holds every class index exactly),
            # so the replicas split them with the noise, row for row.
            def fn(x, *shared):
                labels = tf.cast(tf.round(x[:, -1]), tf.int32)
                return to_uint8(generate(x[:, :-1], labels, *shared))
        else:
            def fn(z, *shared):
                return to_uint8(generate(z, *shared))
        self._split = distribute.ReplicaSplit(strategy, fn)

    def _inputs(self, seed, start, n, labels):
        z = latents(seed, start, n, self.latent_dim)
        if not self.num_classes:
            return z
        import tensorflow as tf

        rows = (balanced_labels(start, n, self.num_classes) if labels is None
                else np.asarray(labels[start:start + n], np.int32))
        return tf.concat([z, tf.constant(rows, tf.float32)[:, None]], 1)

    def batches(self, num: int, seed: int, *shared, labels=None):
        """Yield uint8 batches ``[<= batch_size, H, W, 3]``: images ``0 .. num - 1`` of ``seed``.

        Args:
          num: how many images in all.
          seed: the noise seed.
          *shared: passed to ``generate`` with every batch.
          labels: a conditional generator's classes, one per image (``[num]``, checked by
            the generator); None asks for `balanced_labels`.
        """
        if labels is not None and len(labels) != num:
            raise ValueError(f"labels: {len(labels)} classes for {num} images")
        for start in range(0, num, self.batch_size):
            n = min(self.batch_size, num - start)
            yield self._split(self._inputs(seed, start, n, labels), *shared)

    def __call__(self, num: int, seed: int, *shared, labels=None):
        """Images ``0 .. num - 1`` of ``seed`` as one uint8 tensor ``[num, H, W, 3]``.

        Args:
          num: how many images (at least 1).
          seed: the noise seed.
          *shared: passed to ``generate`` with every batch.
          labels: a conditional generator's classes (see `batches`).
        """
        import tensorflow as tf

        if num < 1:
            raise ValueError(f"num must be positive, got {num}")
        return tf.concat(list(self.batches(num, seed, *shared, labels=labels)), 0)


def generator_sampler(generator, batch_size: int = 100, strategy=None) -> ImageSampler:
    """The `ImageSampler` of a derived generator (a Keras model with ``latent_dim``) in
    inference mode; a conditional one (``num_classes``) gets its labels.

    Args:
      generator: maps ``z`` to images in [-1, 1]; called with ``training=False``.
      batch_size: images per call.
      strategy: replicas that share each batch (None: the current strategy).
    """
    num_classes = getattr(generator, "num_classes", 0)
    if num_classes:
        return ImageSampler(lambda z, y: generator(z, training=False, labels=y),
                            generator.latent_dim, batch_size, strategy, num_classes)
    return ImageSampler(lambda z: generator(z, training=False), generator.latent_dim,
                        batch_size, strategy)


def generate(generator, num: int, seed: int = 0, batch_size: int = 100,
             labels=None) -> np.ndarray:
    """``num`` uint8 images ``[num, H, W, 3]`` of ``generator`` for ``seed``, as NumPy.

    Args:
      generator: a derived generator (``latent_dim``; called in inference mode).
      num: how many images (at least 1).
      seed: the noise seed.
      batch_size: images per call of the generator.
      labels: for a conditional generator, the class of each image (``[num]``); None:
        `balanced_labels`. Refused by an unconditional one.

    Raises:
      errors.UserError: labels given to an unconditional generator, or out of range.
    """
    if labels is not None:
        from autogan_tf import errors

        if not getattr(generator, "num_classes", 0):
            raise errors.UserError("labels: this generator is unconditional; it takes no "
                                   "labels (train with --conditional for one that does)")
        from autogan_tf import conditional

        labels = conditional.check_labels(labels, generator.num_classes).numpy()
    return generator_sampler(generator, batch_size)(num, seed, labels=labels).numpy()
