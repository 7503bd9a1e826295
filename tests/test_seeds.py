"""Random streams: one per purpose, none sharing a state, independent, resumable."""

import os
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import config, seeds
from autogan_tf.search import controller

from conftest import ROOT

NUM_CELLS = 3


def _every_purpose():
    """The purposes a search and a training of 3 cells with 65 iterations draw from."""
    fixed = [seeds.GAN_NOISE, seeds.GAN_INIT, seeds.GAN_AUGMENT, seeds.REWARD_SEEDS, seeds.TRAINING_DATA,
             seeds.SAMPLE_GRID, seeds.CLASSIFIER_WEIGHTS, seeds.CLASSIFIER_DATA,
             seeds.CLASSIFIER_FLIPS, seeds.CLASSIFIER_SHIFTS]
    per_level = [f(level) for level in range(NUM_CELLS) for f in (seeds.controller, seeds.data)]
    inits = [seeds.controller_init(level, k) for level in range(NUM_CELLS) for k in range(40)]
    resets = [seeds.reinit(it) for it in range(65)]
    return fixed + per_level + inits + resets


def test_no_two_purposes_share_a_state():
    purposes = _every_purpose()
    assert len(set(purposes)) == len(purposes)
    for seed in (0, 1, 12345):
        assert len({seeds.integer(seed, p) for p in purposes}) == len(purposes)
        assert len({tuple(seeds.stateless(seed, p).numpy()) for p in purposes}) == len(purposes)
        states = {tuple(seeds.generator(seed, p).state.numpy()) for p in purposes}
        assert len(states) == len(purposes)
    # The same purpose under two run seeds is two streams too.
    assert seeds.integer(0, seeds.GAN_NOISE) != seeds.integer(1, seeds.GAN_NOISE)


def test_streams_are_statistically_independent():
    """Pearson correlation of the first draws of every pair of streams is at the level of
    chance (5 standard errors), and each stream is N(0, 1)."""
    n = 20_000
    purposes = [seeds.GAN_NOISE, seeds.REWARD_SEEDS, seeds.controller(0), seeds.controller(1),
                seeds.controller(2), seeds.data(0), seeds.GAN_INIT, seeds.reinit(0)]
    draws = np.stack([seeds.generator(7, p).normal([n]).numpy() for p in purposes])
    corr = np.corrcoef(draws)
    off_diagonal = corr[~np.eye(len(purposes), dtype=bool)]
    assert np.abs(off_diagonal).max() < 5 / np.sqrt(n)
    assert np.abs(draws.mean(axis=1)).max() < 5 / np.sqrt(n)
    assert np.abs(draws.std(axis=1) - 1).max() < 0.03


def test_the_noise_and_the_first_controller_no_longer_draw_the_same_bits():
    """Regression: both were ``tf.random.Generator.from_seed(seed)`` at level 0."""
    noise = seeds.generator(0, seeds.GAN_NOISE).uniform_full_int([64], tf.int64).numpy()
    ctrl = controller.Controller(cell_indices=0, hidden_size=8, seed=0)
    assert not np.array_equal(noise, ctrl.rng.uniform_full_int([64], tf.int64).numpy())
    # The random sampler of a level draws from the same stream a controller would.
    sampler = controller.RandomSampler((0,), 0)
    assert tuple(sampler.rng.state.numpy()) == tuple(
        seeds.generator(0, seeds.controller(0)).state.numpy())


def test_derived_seeds_do_not_depend_on_the_process():
    """BLAKE2b, not Python's salted hash: another process (another hash seed) agrees."""
    code = ("from autogan_tf import seeds; "
            "print(seeds.integer(3, seeds.controller(1)), seeds.integer(3, seeds.GAN_NOISE))")
    outputs = {subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                              text=True, env=dict(os.environ, PYTHONHASHSEED=str(h)),
                              check=True).stdout.strip() for h in (1, 2)}
    here = f"{seeds.integer(3, seeds.controller(1))} {seeds.integer(3, seeds.GAN_NOISE)}"
    assert outputs == {here}


def test_a_restored_stream_continues_where_its_checkpoint_left_it(tmp_path):
    stream = seeds.generator(5, seeds.REWARD_SEEDS)
    stream.normal([10])
    path = tf.train.Checkpoint(rng=stream).save(str(tmp_path / "ckpt"))
    expected = stream.normal([10]).numpy()
    resumed = seeds.generator(5, seeds.REWARD_SEEDS)  # a new process's stream, at its start
    tf.train.Checkpoint(rng=resumed).restore(path)
    np.testing.assert_array_equal(resumed.normal([10]).numpy(), expected)


def test_python_random_is_seeded_by_purpose_and_restores_the_outer_state():
    random.seed(99)
    outer = random.random()
    random.seed(99)
    with seeds.python_random(0, seeds.GAN_INIT):
        first = random.random()
    assert random.random() == outer  # the caller's stream is untouched
    with seeds.python_random(0, seeds.GAN_INIT):
        assert random.random() == first
    with seeds.python_random(0, seeds.reinit(1)):
        assert random.random() != first


def test_a_purpose_must_be_named():
    with pytest.raises(ValueError, match="purpose"):
        seeds.integer(0, "")


def test_every_place_that_draws_uses_the_module():
    """No module of the package seeds a generator, a stateless op or Python's random by
    itself (the ad-hoc offsets this module replaced)."""
    package = os.path.join(ROOT, "autogan_tf")
    offenders = []
    patterns = ("Generator.from_seed", "random.seed(", "python_random_seed", "seed + ",
                "seed * ")
    for folder, _, files in os.walk(package):
        for name in files:
            if not name.endswith(".py") or name == "seeds.py":
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    code = line.split("#", 1)[0]
                    if any(p in code for p in patterns):
                        offenders.append(f"{os.path.relpath(path, ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
    assert config.SearchConfig().seed == 0  # the run seed itself stays the user's
