"""Differentiable augmentation of D's inputs (`autogan_tf.augment`) and its use in the steps."""

import json
import random

import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import augment, config, gan_trainer, losses, models
from autogan_tf import search_space as ss

from conftest import TINY_GAN, run_fresh

POLICY = "translation,color,cutout"
SEED = tf.constant([3, 4], tf.int64)


def _images(batch=6, side=16, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, side, side, 3)).astype(np.float32)


# -- NumPy references, written from the definitions -------------------------------------------
def numpy_translate(images, shifts):
    """out[b, y, x] = images[b, y - dy, x - dx] where that pixel exists, else 0."""
    out = np.zeros_like(images)
    _, height, width, _ = images.shape
    for b, (dy, dx) in enumerate(shifts):
        for y in range(height):
            for x in range(width):
                if 0 <= y - dy < height and 0 <= x - dx < width:
                    out[b, y, x] = images[b, y - dy, x - dx]
    return out


def numpy_color(images, brightness, saturation, contrast):
    x = images + brightness[:, None, None, None]
    grey = x.mean(axis=3, keepdims=True)
    x = (x - grey) * saturation[:, None, None, None] + grey
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return (x - mean) * contrast[:, None, None, None] + mean


def numpy_cut_out(images, centres, size):
    out = images.copy()
    for b, (cy, cx) in enumerate(centres):
        top, left = cy - size // 2, cx - size // 2
        out[b, max(top, 0):max(top + size, 0), max(left, 0):max(left + size, 0)] = 0
    return out


# -- each transformation against its reference -----------------------------------------------
def test_translate_is_a_shift_with_zero_padding():
    images = _images(side=8)
    shifts = np.array([[0, 0], [1, -2], [-3, 3], [8, 0], [-7, 7], [2, 2]])
    np.testing.assert_array_equal(augment.translate(images, shifts).numpy(),
                                  numpy_translate(images, shifts))


def test_brightness_saturation_and_contrast_follow_their_definitions():
    images = _images()
    rng = np.random.default_rng(1)
    b, s, c = rng.uniform(-0.5, 0.5, 6), rng.uniform(0, 2, 6), rng.uniform(0.5, 1.5, 6)
    got = augment.adjust_contrast(augment.adjust_saturation(
        augment.adjust_brightness(images, b), s), c)
    np.testing.assert_allclose(got.numpy(), numpy_color(images, b, s, c), atol=1e-5)
    # Saturation 0 is grey (equal channels); contrast 0 is flat (the image's mean).
    grey = augment.adjust_saturation(images, np.zeros(6)).numpy()
    np.testing.assert_allclose(grey[..., 0], grey[..., 2], atol=1e-6)
    flat = augment.adjust_contrast(images, np.zeros(6)).numpy()
    np.testing.assert_allclose(flat, np.broadcast_to(images.mean((1, 2, 3), keepdims=True),
                                                     images.shape), atol=1e-6)


def test_cut_out_zeroes_a_square_of_half_the_side_clipped_at_the_border():
    images = _images(side=16)
    centres = np.array([[8, 8], [0, 0], [15, 15], [0, 15], [3, 12], [15, 0]])
    size = augment.cutout_size(16)
    assert size == 8 and augment.cutout_size(32) == 16 and augment.cutout_size(7) == 4
    np.testing.assert_array_equal(augment.cut_out(images, centres, size).numpy(),
                                  numpy_cut_out(images, centres, size))


def test_color_maps_its_variates_to_the_policy_ranges():
    images = _images()
    variates = np.random.default_rng(2).uniform(0, 1, (6, 3)).astype(np.float32)
    np.testing.assert_allclose(
        augment.color(images, variates).numpy(),
        numpy_color(images, variates[:, 0] - 0.5, 2 * variates[:, 1], variates[:, 2] + 0.5),
        atol=1e-5)


@pytest.mark.parametrize("side,reach", [(32, 4), (16, 2), (8, 1), (48, 6)])
def test_translation_shifts_by_up_to_an_eighth_of_the_side_each_value_alike(side, reach):
    """An impulse in the centre shows each image's shift: -reach .. reach, all reached."""
    assert augment.max_shift(side) == reach
    impulse = np.zeros([2000, side, side, 3], np.float32)
    impulse[:, side // 2, side // 2] = 1.0
    variates = augment.draw("translation", 2000, SEED)["translation"]
    moved = augment.translation(impulse, variates).numpy()[..., 0]
    where = np.argwhere(moved == 1.0)  # (image, y, x), one per image
    assert len(where) == 2000
    for axis in (1, 2):
        shifts = where[:, axis] - side // 2
        values, counts = np.unique(shifts, return_counts=True)
        assert list(values) == list(range(-reach, reach + 1))
        assert counts.min() > 0.6 * 2000 / len(values)  # roughly uniform


def test_cutout_squares_land_everywhere_and_keep_their_size():
    side = 16
    ones = np.ones([500, side, side, 3], np.float32)
    cut = augment.cutout(ones, augment.draw("cutout", 500, SEED)["cutout"]).numpy()
    for image in cut:
        rows, cols = np.nonzero(image[..., 0] == 0)
        height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
        assert (image[rows.min():rows.max() + 1, cols.min():cols.max() + 1] == 0).all()
        assert 4 <= height <= 8 and 4 <= width <= 8  # half the side, clipped at most to half
    zeroed = (cut[..., 0] == 0).mean(axis=0)
    assert zeroed.min() > 0  # every pixel is cut in some image


# -- a policy -----------------------------------------------------------------------------------
def test_a_policy_applies_its_families_in_order_with_their_variates():
    images = _images()
    variates = augment.draw(POLICY, 6, SEED)
    assert set(variates) == {"translation", "color", "cutout"}
    expected = augment.cutout(augment.color(augment.translation(
        images, variates["translation"]), variates["color"]), variates["cutout"])
    np.testing.assert_allclose(augment.apply(images, POLICY, variates).numpy(),
                               expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(augment.augment(images, POLICY, SEED).numpy(), expected.numpy(),
                               atol=1e-6)


def test_draws_are_deterministic_per_seed_and_per_family():
    first = augment.draw(POLICY, 5, SEED)
    again = augment.draw("cutout,color", 5, SEED)
    other = augment.draw(POLICY, 5, tf.constant([3, 5], tf.int64))
    for name in ("color", "cutout"):
        np.testing.assert_array_equal(first[name].numpy(), again[name].numpy())
        assert not np.array_equal(first[name].numpy(), other[name].numpy())
    for value in first.values():
        assert value.dtype == tf.float32 and 0 <= value.numpy().min() <= value.numpy().max() < 1


def test_an_empty_policy_is_the_identity():
    images = tf.constant(_images())
    assert augment.draw("", 6, SEED) == {}
    assert augment.apply(images, "", {}) is images
    assert augment.augment(images, " ", SEED) is images


def test_bfloat16_images_stay_bfloat16_and_agree_with_float32():
    images = _images()
    low = augment.augment(tf.cast(images, tf.bfloat16), POLICY, SEED)
    assert low.dtype == tf.bfloat16
    high = augment.augment(tf.cast(tf.cast(images, tf.bfloat16), tf.float32), POLICY, SEED)
    np.testing.assert_allclose(tf.cast(low, tf.float32).numpy(), high.numpy(), atol=0.02)


def test_policies_are_checked_naming_the_flag():
    assert config.augment_policy(" Translation, color ,") == ("translation", "color")
    assert config.augment_policy("") == ()
    assert config.TrainConfig(augment=POLICY).augment == POLICY
    assert config.SearchConfig().augment == "" and config.TrainConfig().augment == ""
    with pytest.raises(ValueError, match="--augment: unknown transformation.*flip"):
        config.TrainConfig(augment="translation,flip")
    with pytest.raises(ValueError, match="--augment: color named twice"):
        config.SearchConfig(augment="color,cutout,color")
    g = models.DerivedGenerator("1 0 1 1", gf_dim=4, latent_dim=4)
    with pytest.raises(ValueError, match="--augment"):
        gan_trainer.GANTrainer(g, models.Discriminator(4, num_cells=1), augment="zoom")


# -- gradients ------------------------------------------------------------------------------------
def test_the_gradient_of_a_translation_is_the_shift_back():
    images = tf.constant(_images(side=8))
    shifts = np.array([[1, -2], [-3, 3], [0, 0], [5, 5], [-1, 0], [2, 7]])
    weights = _images(side=8, seed=5)
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(weights * augment.translate(images, shifts))
    np.testing.assert_allclose(tape.gradient(total, images).numpy(),
                               numpy_translate(weights, -shifts), atol=1e-6)


def test_gradients_reach_the_generator_through_the_augmentation():
    g = models.DerivedGenerator("autogan_cifar10_a", gf_dim=4, latent_dim=4, bottom_width=2)
    d = models.Discriminator(4)
    z = tf.random.stateless_normal([4, 4], [0, 1])
    with tf.GradientTape() as tape:
        fake = augment.augment(g(z, training=True), POLICY, SEED)
        loss = losses.generator_hinge_loss(d(fake, training=True))
    grads = tape.gradient(loss, g.trainable_variables)
    assert all(grad is not None and np.isfinite(grad.numpy()).all() for grad in grads)
    assert sum(float(tf.reduce_sum(tf.abs(grad))) > 0 for grad in grads) > len(grads) // 2


# -- in the training steps ---------------------------------------------------------------------
class RecordingDiscriminator:
    """A discriminator that keeps the images it is called with (eager steps only)."""

    def __init__(self, d):
        self.d, self.inputs = d, []

    def __call__(self, images, **kwargs):
        self.inputs.append(np.asarray(images))
        return self.d(images, **kwargs)

    def __getattr__(self, name):
        return getattr(self.d, name)


def _cut_square(image):
    """The (top, left, height, width) of the pixels of ``image`` that are exactly 0, checked
    to be one filled rectangle."""
    rows, cols = np.nonzero((image == 0).all(axis=-1))
    assert len(rows), "no cut-out square"
    box = image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    assert (box == 0).all()
    return rows.min(), cols.min(), np.ptp(rows) + 1, np.ptp(cols) + 1


def test_real_and_fake_pass_through_the_same_policy_with_their_own_draws():
    """D's step sees real and fake cut out, G's step sees its images cut out; the real
    and the fake half of a D step get independent positions."""
    g = models.DerivedGenerator("autogan_cifar10_a", gf_dim=4, latent_dim=4, bottom_width=2)
    trainer = gan_trainer.GANTrainer(g, models.Discriminator(4), n_critic=1, g_batch_size=6,
                                     seed=0, augment="cutout")
    recorder = trainer.discriminator = RecordingDiscriminator(trainer.discriminator)
    reals = tf.random.stateless_normal([1, 6, 16, 16, 3], [2, 3])
    out = trainer._iteration(reals, None, None)  # eager: the recorder sees the values
    assert bool(out["finite"])
    assert [x.shape[0] for x in recorder.inputs] == [6, 6, 6]  # D: real, fake; G: fake
    squares = [[_cut_square(image) for image in batch] for batch in recorder.inputs]
    for batch in squares:
        assert all(4 <= h <= 8 and 4 <= w <= 8 for _, _, h, w in batch)
    assert squares[0] != squares[1]
    unchanged = recorder.inputs[0] != 0
    np.testing.assert_array_equal(recorder.inputs[0][unchanged], reals.numpy()[0][unchanged])


def test_the_supernet_step_traces_once_for_many_architectures_with_augmentation():
    g = models.SuperGenerator(gf_dim=4, latent_dim=4)
    trainer = gan_trainer.GANTrainer(g, models.Discriminator(4), n_critic=2, g_batch_size=3,
                                     seed=1, augment=POLICY)
    rng = random.Random(0)
    before = [v.numpy().copy() for v in g.trainable_variables]
    for stage, side in enumerate((8, 16)):
        reals = tf.random.normal([2, 2, side, side, 3])
        for _ in range(4):
            archs = [ss.sample_arch(3, rng).padded(3) for _ in range(2)]
            out = trainer.train_iteration(reals, archs, stage=stage)
            assert bool(out["finite"])
    for fn in trainer._compiled.values():
        assert fn.experimental_get_tracing_count() == 1
    assert any(np.any(v.numpy() != b) for v, b in zip(g.trainable_variables, before))
    assert "augment_noise" in trainer.checkpoint_items()


def _op_types(function, *args):
    graph_def = function.get_concrete_function(*args).graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    for library_function in graph_def.library.function:
        types.update(node.op for node in library_function.node_def)
    return types


def test_without_a_policy_the_step_holds_no_augmentation():
    g = models.DerivedGenerator("1 0 1 1", gf_dim=4, latent_dim=4)
    d = models.Discriminator(4, num_cells=1)
    reals = tf.random.normal([1, 2, 8, 8, 3])
    plain = gan_trainer.GANTrainer(g, d, n_critic=1, g_batch_size=2)
    plain.train_iteration(reals)
    assert plain.augment == () and "augment_noise" not in plain.checkpoint_items()
    without = _op_types(plain._compiled[(None, True)], reals, None, None)
    on = gan_trainer.GANTrainer(g, d, n_critic=1, g_batch_size=2, augment=POLICY)
    on.train_iteration(reals)
    with_policy = _op_types(on._compiled[(None, True)], reals, None, None)
    assert without < with_policy  # what the noise needs, and nothing of the augmentation
    assert {"StatelessRandomUniformV2", "GatherV2"} <= with_policy - without


def test_a_bfloat16_step_with_augmentation_trains():
    g = models.DerivedGenerator("autogan_cifar10_a", gf_dim=4, latent_dim=4, bottom_width=2)
    trainer = gan_trainer.GANTrainer(g, models.Discriminator(4), n_critic=2, g_batch_size=4,
                                     seed=2, precision="bfloat16", augment=POLICY)
    before = [v.numpy().copy() for v in g.trainable_variables]
    for _ in range(2):
        assert bool(trainer.train_iteration(tf.random.normal([2, 4, 16, 16, 3]))["finite"])
    assert any(np.any(v.numpy() != b) for v, b in zip(g.trainable_variables, before))


def test_search_and_training_pass_the_setting_to_their_trainer():
    from autogan_tf import training
    from autogan_tf.search import shared_gan

    train_config = config.TrainConfig(**TINY_GAN, arch="1 0 1 1", augment="color,cutout")
    g, d = training.build_models(train_config)
    assert training.make_trainer(train_config, g, d).augment == ("color", "cutout")
    search_config = config.SearchConfig(**TINY_GAN, num_cells=1, mlas=False, grow_steps="",
                                        augment="translation")
    shared = shared_gan.SharedGAN(search_config, tf.distribute.get_strategy(), False)
    assert shared.trainer.augment == ("translation",)


MIRRORED_VS_DEFAULT = """
    import json
    import numpy as np
    import tensorflow as tf
    from autogan_tf import distribute, gan_trainer, models

    strategy = distribute.make_strategy("mirrored", cpu_devices=2)

    def losses(scope):
        with scope.scope():
            g = models.DerivedGenerator("1 0 1 1", gf_dim=4, latent_dim=4,
                                        sync_bn=scope is not default)  # BN of to_rgb
            d = models.Discriminator(4, num_cells=1)
            g(tf.zeros([1, 4])); d(tf.zeros([1, 8, 8, 3]))
        g.set_weights(weights[0]); d.set_weights(weights[1])
        t = gan_trainer.GANTrainer(g, d, n_critic=2, g_batch_size=4, seed=3,
                                   strategy=None if scope is default else scope,
                                   augment="translation,color,cutout")
        reals = tf.random.stateless_normal([2, 4, 8, 8, 3], [1, 2])
        out = [t.train_iteration(reals) for _ in range(2)]
        return [o["d_losses"].numpy().tolist() + [float(o["g_loss"])] for o in out]

    default = tf.distribute.get_strategy()
    g0 = models.DerivedGenerator("1 0 1 1", gf_dim=4, latent_dim=4)
    d0 = models.Discriminator(4, num_cells=1)
    g0(tf.zeros([1, 4])); d0(tf.zeros([1, 8, 8, 3]))
    weights = (g0.get_weights(), d0.get_weights())
    print(json.dumps({"one": losses(default), "two": losses(strategy)}))
"""


def test_two_replicas_augment_as_one_device_does():
    """The variates are drawn for the global batch and sliced per replica: the same losses."""
    got = json.loads(run_fresh(MIRRORED_VS_DEFAULT))
    np.testing.assert_allclose(got["two"], got["one"], rtol=1e-4, atol=1e-5)
