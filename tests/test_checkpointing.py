"""Every variable of every model reaches a `tf.train.Checkpoint` on its own.

Keras 3 keeps layers held in lists/dicts in containers TensorFlow's checkpoints
do not traverse; a model whose cells sit only in a list would save nothing of
them unless an optimizer happened to reference the trainable ones.
"""

import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import models
from autogan_tf.search import controller


def _models():
    return [
        lambda: models.DerivedGenerator("0 1 2 1 1 2 2 1 1 1 1 0 0 3", gf_dim=4, latent_dim=4),
        lambda: models.SuperGenerator(gf_dim=4, latent_dim=4),
        lambda: models.Discriminator(4),
        lambda: controller.Controller((0, 1), seed=1),
    ]


def _state(model):
    # Keras' own dropout seed state (unused by these models) is not a tf.Variable
    # TensorFlow checkpoints; everything else must round-trip.
    variables = [v for v in model.variables if "seed_generator" not in v.path]
    if hasattr(model, "rng"):
        variables.append(model.rng.state)
    return variables


@pytest.mark.parametrize("make", _models())
def test_model_alone_round_trips_every_variable(make, tmp_path):
    source = make()
    for i, v in enumerate(_state(source)):
        v.assign(tf.cast(tf.fill(v.shape, float(i % 7) + 0.5), v.dtype))
    path = tf.train.Checkpoint(model=source).save(str(tmp_path / "ckpt"))
    saved = {name for name, _ in tf.train.list_variables(path) if name.startswith("model/")}
    assert len(saved) == len(_state(source))
    target = make()
    tf.train.Checkpoint(model=target).restore(path).assert_consumed()
    for a, b in zip(_state(source), _state(target)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
