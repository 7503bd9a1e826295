"""One path from (generator, number, seed) to images: independent of the batch size, the
number asked for and the replicas; shared by evaluation, rewards, the API and the export."""

import json

import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import api, models, sampling
from autogan_tf.metrics.evaluator import Evaluator
from autogan_tf.serving import export

from conftest import run_fresh

LATENT = 8
ARCH = "1 1 0 1 0 2 1 1 1 1 1 1 0 3"  # batch norm in every cell, every upsampling kind


@pytest.fixture(scope="module")
def generator():
    g = models.DerivedGenerator(ARCH, gf_dim=8, latent_dim=LATENT)
    # Moving statistics away from 0/1, so inference-mode batch norm is not an identity.
    for v in g.non_trainable_variables:
        v.assign(tf.random.stateless_uniform(v.shape, [1, 2], 0.5, 1.5))
    return g


def test_row_i_of_a_seed_is_its_own_stateless_draw():
    rows = sampling.latents(42, 3, 5, LATENT).numpy()
    reference = np.stack([tf.random.stateless_normal([LATENT], seed=[42, i]).numpy()
                          for i in range(3, 8)])
    np.testing.assert_array_equal(rows, reference)
    whole = sampling.latents(42, 0, 10, LATENT).numpy()
    np.testing.assert_array_equal(whole[3:8], rows)  # a row does not depend on the count
    assert sampling.latents(43, 3, 5, LATENT).numpy().tolist() != rows.tolist()
    assert sampling.latents(42, 0, 0, LATENT).shape == (0, LATENT)


def _close_images(a, b):
    """Equal up to a unit of rounding in a few pixels: a batch size can change which
    convolution algorithm runs, and so the last bit of a float."""
    diff = np.abs(a.astype(int) - b.astype(int))
    assert a.shape == b.shape and diff.max() <= 1 and (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("batch_size", [1, 7])
def test_images_do_not_depend_on_the_batch_size(generator, batch_size):
    reference = sampling.generate(generator, 30, seed=4, batch_size=100)
    _close_images(sampling.generate(generator, 30, seed=4, batch_size=batch_size), reference)
    # Fewer images: the first ones of the same list.
    _close_images(sampling.generate(generator, 12, seed=4, batch_size=batch_size),
                  reference[:12])


def test_the_api_and_the_exported_model_draw_the_same_images(generator, tmp_path):
    from autogan_tf.serving import client as serving

    ours = api.generate(generator, 9, seed=11, batch_size=4)
    path = export.export_generator(generator, str(tmp_path / "m"), 1, warmup_requests=0)
    served = serving.LocalGenerator(path).generate(9, 11)
    _close_images(np.asarray(served), ours)


def test_scores_do_not_depend_on_the_eval_batch_size(generator, tiny_classifier):
    scores = [Evaluator(tiny_classifier, batch_size=b)(generator, 40, seed=2) for b in (7, 100)]
    assert scores[0]["is_mean"] == pytest.approx(scores[1]["is_mean"], rel=1e-4)


def test_supernet_reward_images_do_not_depend_on_the_batch_size():
    from autogan_tf.search.rewards import SupernetImages

    g = models.SuperGenerator(gf_dim=4, latent_dim=LATENT, bottom_width=4, num_cells=2)
    arch = [1, 1, 0, 1, 0, 2, 1, 1, 1]
    one, many = (SupernetImages(g, tf.distribute.get_strategy(), 2, b)(arch, 20, 1, seed=5)
                 for b in (3, 100))
    _close_images(one.numpy(), many.numpy())


def test_two_replicas_draw_the_images_of_one_device():
    out = run_fresh(f"""
        import json
        import numpy as np
        import tensorflow as tf
        from autogan_tf import distribute, models, sampling

        strategy = distribute.make_strategy("mirrored", cpu_devices=2)
        g = models.DerivedGenerator("{ARCH}", gf_dim=8, latent_dim={LATENT})
        one = sampling.generate(g, 21, seed=3, batch_size=100)
        two = sampling.generator_sampler(g, 8, strategy)(21, 3).numpy()
        diff = np.abs(one.astype(int) - two.astype(int))
        print(json.dumps({{"max": int(diff.max()), "frac": float((diff > 0).mean()),
                           "shape": list(two.shape)}}))
    """)
    got = json.loads(out)
    assert got["shape"] == [21, 32, 32, 3] and got["max"] <= 1 and got["frac"] < 1e-3


def test_bad_counts_are_refused(generator):
    from autogan_tf import errors

    with pytest.raises(errors.UserError, match="num_images"):
        api.generate(generator, 0)
    with pytest.raises(errors.UserError, match="batch_size"):
        api.generate(generator, 3, batch_size=0)
