"""What autogan-tf needs from Keras 3 beyond its documented API, in one place.

Two things have no public form in Keras 3, and both are read here only:

* every sublayer of a model, nested ones included (``Layer._flatten_layers``):
  the precision policy and the batch-norm switch of the search's rewards walk
  them;
* the slot index an optimizer gives a variable (``Optimizer._get_variable_index``),
  which also resolves the per-replica copies of a distributed variable to the
  variable the optimizer was built with: `optimizers.TorchAdam` keeps a step
  count per variable and reads its moments by it.

`setup.py` pins the Keras versions these were checked against, and
``tests/test_keras_compat.py`` fails when either moves. `track` is here because it
works around what Keras does with layers held in containers.
"""

from __future__ import annotations


def track(owner, name: str, layer):
    """Make ``layer`` a direct attribute of ``owner`` so `tf.train.Checkpoint` saves it.

    Keras 3 wraps list and dict attributes in its own tracked containers, which
    TensorFlow's object-based checkpoints do not traverse: without this, layers
    held only in a list or dict (cells, blocks, heads) would be silently missing
    from checkpoints (their trainable weights may still be reached through an
    optimizer, but BN statistics, spectral-norm vectors and EMA weights not).

    Args:
      owner: the layer or model that holds ``layer``.
      name: the attribute name, which becomes part of the checkpoint path.
      layer: the sublayer.

    Returns:
      ``layer``, so the call can sit inside a list comprehension.
    """
    setattr(owner, name, layer)
    return layer


def sublayers(layer) -> list:
    """``layer`` and every layer inside it, however deep and however held.

    Args:
      layer: a Keras layer or model.
    """
    return list(layer._flatten_layers(include_self=True, recursive=True))


def variable_index(optimizer, variable) -> int:
    """The position of ``variable`` in the list ``optimizer`` was built with.

    Inside a distributed update, ``variable`` may be one replica's copy; the index is the
    one of the variable it copies.

    Args:
      optimizer: a built Keras optimizer.
      variable: one of the variables it was built with (or a replica's copy of it).
    """
    return optimizer._get_variable_index(variable)
