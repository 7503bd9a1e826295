"""Keras conventions: configs round-trip, inputs are checked at the layer, and the two
private Keras attributes the package relies on are where `keras_compat` reads them."""

import copy
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import (cells, conditional, discriminator_blocks, keras_compat, models,
                        optimizers, spectral_norm, torch_layers)
from autogan_tf import search_space as ss
from autogan_tf.search import controller

from conftest import ROOT

ARCH = "1 1 0 1 0 2 1 1 1 1 1 1 0 3"


def _instances():
    """One of every layer and model class of the package that has a ``get_config``."""
    spec = ss.parse_arch(ARCH).cells[1]
    return {
        "TorchBatchNorm": torch_layers.batch_norm("bn"),
        "FixedCell": cells.FixedCell(spec, 8, name="cell2"),
        "SearchCell": cells.SearchCell(1, 8, name="cell2"),
        "ToRGB": cells.ToRGB(8, name="to_rgb"),
        "SpectralNorm": spectral_norm.sn_conv(8, 3, "c1", in_channels=4),
        "OptimizedDisBlock": discriminator_blocks.OptimizedDisBlock(8, name="block1"),
        "DisBlock": discriminator_blocks.DisBlock(8, downsample=True, name="block2"),
        "MinibatchStd": discriminator_blocks.MinibatchStd(2, name="std"),
        "DerivedGenerator": models.DerivedGenerator(ARCH, gf_dim=8, latent_dim=4),
        "SuperGenerator": models.SuperGenerator(gf_dim=8, latent_dim=4, num_cells=2),
        "Discriminator": models.Discriminator(8, num_cells=2, minibatch_std=2),
        "Controller": controller.Controller((1, 2), hidden_size=8, seed=3,
                                            excluded_choices="norm=in"),
        "ClassAffine": conditional.ClassAffine(3, 8, name="bn_class"),
        "ClassEmbedding": conditional.ClassEmbedding(3, 4, name="embed"),
        "conditional DerivedGenerator": models.DerivedGenerator(ARCH, gf_dim=8, latent_dim=4,
                                                                num_classes=3),
        "conditional SuperGenerator": models.SuperGenerator(gf_dim=8, latent_dim=4,
                                                            num_cells=2, num_classes=3),
        "conditional Discriminator": models.Discriminator(8, num_cells=2, num_classes=3),
    }


@pytest.mark.parametrize("name", sorted(_instances()))
def test_get_config_round_trips_through_from_config(name):
    layer = _instances()[name]
    config = layer.get_config()
    clone = type(layer).from_config(copy.deepcopy(config))  # Keras may pop from it
    assert clone.get_config() == config
    if name.split()[-1] in ("DerivedGenerator", "SuperGenerator", "Discriminator", "Controller"):
        # Built in their constructors: the clone has the same weights' shapes and names.
        assert [(w.path.split("/", 1)[-1], tuple(w.shape)) for w in clone.weights] == \
            [(w.path.split("/", 1)[-1], tuple(w.shape)) for w in layer.weights]


def test_the_optimizer_config_round_trips():
    opt = optimizers.make_adam(2e-4, 0.0, 0.9, masked=True, name="g_adam")
    config = opt.get_config()
    clone = optimizers.MaskedAdam.from_config(config)
    assert clone.get_config() == config and (clone.beta_1, clone.beta_2) == (0.0, 0.9)


@pytest.mark.parametrize("layer,shape,name", [
    (lambda: cells.FixedCell(ss.parse_arch(ARCH).cells[0], 8, name="cell1"), (2, 4, 4, 6),
     "cell1"),
    (lambda: cells.ToRGB(8, name="to_rgb"), (2, 4, 4, 3), "to_rgb"),
    (lambda: discriminator_blocks.DisBlock(8, name="block2"), (2, 4, 4, 4), "block2"),
    (lambda: discriminator_blocks.OptimizedDisBlock(8, name="block1"), (2, 8, 8, 1), "block1"),
    (lambda: models.DerivedGenerator(ARCH, gf_dim=8, latent_dim=4, name="g"), (2, 5), "g"),
    (lambda: models.Discriminator(8, name="d"), (2, 32, 32, 1), "d"),
])
def test_a_width_mismatch_fails_at_the_layer_that_declares_its_input(layer, shape, name):
    with pytest.raises(ValueError, match=rf"layer '{name}' is incompatible.*axis -1"):
        layer()(tf.zeros(shape))


def test_sublayers_walks_layers_held_as_attributes_and_in_lists():
    d = models.Discriminator(8, num_cells=3)
    names = {layer.name for layer in keras_compat.sublayers(d)}
    # Blocks are held in a list and as attributes; spectral norm wraps an inner conv.
    assert {"block1", "block2", "block3", "block4", "c1", "c1_inner", "l5", "l5_inner"} <= names
    assert keras_compat.sublayers(d)[0] is d


def test_variable_index_is_the_position_in_the_built_list():
    a, b = tf.Variable(1.0), tf.Variable([2.0, 3.0])
    opt = optimizers.make_adam(1e-3, 0.0, 0.9)
    opt.build([a, b])
    assert [keras_compat.variable_index(opt, v) for v in (a, b)] == [0, 1]


def test_the_private_keras_attributes_are_still_there():
    """Fails when Keras moves what `keras_compat` reads: then update it and the pin."""
    assert callable(getattr(keras.layers.Layer, "_flatten_layers", None))
    assert callable(getattr(keras.optimizers.Optimizer, "_get_variable_index", None))
    assert callable(getattr(keras.optimizers.Optimizer, "add_optimizer_variables", None))


def test_setup_pins_the_keras_versions_checked():
    text = open(f"{ROOT}/setup.py", encoding="utf-8").read()
    low, high = re.search(r'"keras>=([\d.]+),<([\d.]+)"', text).groups()

    def version(v):
        return tuple(int(x) for x in v.split(".")[:2])

    assert version(low) <= version(keras.__version__) < version(high)


def test_spectral_norm_is_a_keras_wrapper_of_its_layer():
    sn = spectral_norm.sn_conv(4, 3, "c")
    assert isinstance(sn, keras.layers.Wrapper)
    sn(tf.zeros([1, 5, 5, 2]), training=True)
    assert sn.input_spec is not None and np.isclose(np.linalg.norm(sn.u.numpy()), 1.0)
