"""Tests for autogan_tf.controller against a NumPy re-implementation of the policy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from autogan_tf import search_space as ss
from autogan_tf.search import controller as ctrl

H = ctrl.HIDDEN_SIZE


# -- independent NumPy reference -------------------------------------------------
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def numpy_policy(c, decisions, h0=None, c0=None, excluded=None):
    """Log-probs, entropies [B, T] and final (h, c) by hand: LSTM gates i, f, g, o.

    ``excluded``: {decision index: options with probability 0} (a softmax over the rest)."""
    decisions = np.asarray(decisions)
    b = decisions.shape[0]
    kernel, recurrent, bias = [w.numpy().astype(np.float64) for w in c.cell.weights]
    bias = bias + c.recurrent_bias.numpy().astype(np.float64)  # PyTorch's bias_ih + bias_hh
    table = c.embedding.embeddings.numpy().astype(np.float64)
    h = np.zeros((b, H)) if h0 is None else np.asarray(h0, np.float64)
    cs = np.zeros((b, H)) if c0 is None else np.asarray(c0, np.float64)
    sizes = [s for i in c.cell_indices for s in ss.decision_sizes(i)]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    log_probs, entropies = [], []
    for t in range(len(sizes)):
        x = np.zeros((b, H)) if t == 0 else table[decisions[:, t - 1] + offsets[t - 1]]
        z = x @ kernel + h @ recurrent + bias
        i, f, g, o = np.split(z, 4, axis=1)
        cs = _sigmoid(f) * cs + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(cs)
        w, bb = [v.numpy().astype(np.float64) for v in c.heads[t].weights]
        logits = h @ w + bb
        banned = list((excluded or {}).get(t, ()))
        allowed = np.setdiff1d(np.arange(logits.shape[1]), banned)
        lp = np.full_like(logits, -np.inf)
        lp[:, allowed] = _log_softmax(logits[:, allowed])
        log_probs.append(lp[np.arange(b), decisions[:, t]])
        entropies.append(-(np.exp(lp[:, allowed]) * lp[:, allowed]).sum(axis=1))
    return np.stack(log_probs, 1), np.stack(entropies, 1), (h, cs)


def random_decisions(cell_indices, n, seed):
    rng = np.random.default_rng(seed)
    sizes = [s for i in cell_indices for s in ss.decision_sizes(i)]
    return np.stack([rng.integers(0, s, n) for s in sizes], 1).astype(np.int32)


# -- policy values ---------------------------------------------------------------
@pytest.mark.parametrize("cells", [(0,), (2,), (0, 1, 2)])
def test_log_probs_and_entropies_match_numpy(cells):
    c = ctrl.Controller(cells, seed=4)
    decisions = random_decisions(cells, 6, seed=1)
    rng = np.random.default_rng(2)
    h0, c0 = rng.normal(0, 0.5, (6, H)), rng.normal(0, 0.5, (6, H))
    want_lp, want_h, _ = numpy_policy(c, decisions, h0, c0)
    got_lp, got_h = c.log_prob_and_entropy(decisions, (h0, c0))
    np.testing.assert_allclose(got_lp, want_lp, atol=1e-5)
    np.testing.assert_allclose(got_h, want_h, atol=1e-5)
    # Entropy is bounded by log(options) and every head sees a real distribution.
    sizes = np.array([s for i in cells for s in ss.decision_sizes(i)])
    assert np.all(got_h.numpy() <= np.log(sizes) + 1e-6) and np.all(got_h.numpy() > 0)


def test_excluded_choices_are_never_drawn_and_the_rest_renormalised():
    """norm=in and up=deconv out: decisions 1, 2 (cell 0) and 5, 6 (cell 1) never take
    index 2, and log-probs / entropies are a softmax over the allowed options (NumPy)."""
    c = ctrl.Controller((0, 1), seed=4, excluded_choices="norm=in,up=deconv")
    s = c.sample(600, seed=1)
    d = s.decisions.numpy()
    for t in (1, 2, 5, 6):
        assert set(np.unique(d[:, t])) == {0, 1}
    assert set(np.unique(d[:, 3])) == {0, 1} and set(np.unique(d[:, 8])) == {0, 1}
    excluded = {t: (2,) for t in (1, 2, 5, 6)}
    want_lp, want_h, _ = numpy_policy(c, d[:8], excluded=excluded)
    np.testing.assert_allclose(s.log_probs.numpy()[:8], want_lp, atol=1e-5)
    np.testing.assert_allclose(s.entropies.numpy()[:8], want_h, atol=1e-5)
    assert np.all(want_h[:, [1, 2, 5, 6]] <= np.log(2) + 1e-6)
    twin = ctrl.Controller.from_config(c.get_config())
    assert twin.excluded_choices == "norm=in,up=deconv"
    np.testing.assert_allclose(twin.log_prob_and_entropy(d[:8])[0], want_lp, atol=1e-5)


def test_random_sampler_draws_the_allowed_choices_uniformly():
    sampler = ctrl.RandomSampler((0, 1, 2), seed=3, excluded_choices="norm=in")
    archs = sampler.sample(6000).archs.numpy()
    for column in (1, 5, 10):  # the norm of each cell
        counts = np.bincount(archs[:, column], minlength=3)
        assert counts[2] == 0 and abs(counts[0] - counts[1]) < 6000 * 0.05
    assert np.bincount(archs[:, 2], minlength=3).min() > 1700  # up: all three, uniform


def test_bad_excluded_choices_are_refused():
    for text, message in (("norm=xx", "norm has no choice 'xx'"), ("foo=in", "unknown field"),
                          ("norm", "expected field=choice"),
                          ("norm=in,norm=bn,norm=none", "leaves no choice for norm")):
        with pytest.raises(ss.ArchError, match=message):
            ctrl.Controller(0, excluded_choices=text)


def test_sample_reports_its_own_log_probs_and_final_hidden():
    c = ctrl.Controller(1, seed=0)
    s = c.sample(16)
    want_lp, want_h, (h, cs) = numpy_policy(c, s.decisions.numpy())
    np.testing.assert_allclose(s.log_probs, want_lp, atol=1e-5)
    np.testing.assert_allclose(s.entropies, want_h, atol=1e-5)
    np.testing.assert_allclose(s.hidden[0], h, atol=1e-5)
    np.testing.assert_allclose(s.hidden[1], cs, atol=1e-5)
    assert s.beam_index is None and s.initial_hidden is None


@pytest.mark.parametrize("cell", [0, 1, 2, 3])
def test_sample_shapes_and_ranges(cell):
    c = ctrl.Controller(cell, seed=cell)
    s = c.sample(300)
    sizes = ss.decision_sizes(cell)
    assert s.decisions.dtype == tf.int32 and s.decisions.shape == (300, len(sizes))
    assert s.log_probs.shape == s.entropies.shape == (300, len(sizes))
    assert s.hidden[0].shape == s.hidden[1].shape == (300, H)
    d = s.decisions.numpy()
    for t, size in enumerate(sizes):
        assert d[:, t].min() >= 0 and d[:, t].max() < size
        assert len(np.unique(d[:, t])) == size  # every option is reachable at init
    if cell:
        assert d[:, -1].max() < 2 ** cell


def test_sampling_frequencies_follow_the_policy():
    c = ctrl.Controller(0, seed=9)
    s = c.sample(4000, seed=3)
    first = s.decisions.numpy()[:, 0]
    p1 = float(np.exp(numpy_policy(c, np.ones((1, 4), np.int32))[0][0, 0]))
    assert abs(first.mean() - p1) < 4 * np.sqrt(p1 * (1 - p1) / 4000)


def test_whole_generator_controller_gives_valid_architectures():
    c = ctrl.Controller((0, 1, 2), seed=1)
    s = c.sample(20)
    assert s.archs.shape == (20, ss.vector_length(3))
    for row in s.archs.numpy().tolist():
        ss.Arch.from_list(row)


# -- beam (MLAS) -----------------------------------------------------------------
def test_beam_continuation_prefix_and_hidden():
    prev = ctrl.Controller(0, seed=1).sample(3, seed=0)
    c = ctrl.Controller(1, seed=2)
    s = c.sample(64, prev_archs=prev.archs, prev_hidden=prev.hidden)
    idx = s.beam_index.numpy()
    assert s.beam_index.dtype == tf.int32 and s.archs.shape == (64, 4 + 5)
    assert set(idx) == {0, 1, 2}  # with replacement: every entry is picked, repeatedly
    np.testing.assert_array_equal(s.archs[:, :4], prev.archs.numpy()[idx])
    np.testing.assert_array_equal(s.archs[:, 4:], s.decisions)
    h0, c0 = prev.hidden[0].numpy()[idx], prev.hidden[1].numpy()[idx]
    np.testing.assert_allclose(s.initial_hidden[0], h0)
    want, _, _ = numpy_policy(c, s.decisions.numpy(), h0, c0)
    np.testing.assert_allclose(s.log_probs, want, atol=1e-5)
    from_zero, _, _ = numpy_policy(c, s.decisions.numpy())
    assert np.abs(from_zero - want).max() > 1e-3  # the beam's state matters


def test_beam_pick_is_uniform():
    prev_archs = tf.constant(random_decisions((0,), 4, 0))
    hidden = (tf.zeros([4, H]), tf.zeros([4, H]))
    s = ctrl.Controller(1).sample(4000, prev_archs=prev_archs, prev_hidden=hidden, seed=1)
    counts = np.bincount(s.beam_index.numpy(), minlength=4)
    assert np.all(np.abs(counts - 1000) < 4 * np.sqrt(4000 * 0.25 * 0.75))


@pytest.mark.parametrize("kwargs,message", [
    (dict(prev_archs=np.zeros((2, 4), np.int32)), "give both or neither"),
    (dict(prev_archs=np.zeros((2, 9), np.int32), prev_hidden=(np.zeros((2, H)),) * 2),
     "continues architectures of 4 integers"),
    (dict(prev_archs=np.zeros((2, 4), np.int32), prev_hidden=(np.zeros((3, H)),) * 2),
     r"must be \[2, 100\]"),
])
def test_bad_beam_is_refused(kwargs, message):
    with pytest.raises(ctrl.ControllerError, match=message):
        ctrl.Controller(1).sample(2, **kwargs)


def test_bad_cells_and_batch_are_refused():
    with pytest.raises(ctrl.ControllerError, match="consecutive"):
        ctrl.Controller((0, 2))
    with pytest.raises(ctrl.ControllerError, match="batch_size"):
        ctrl.Controller(0).sample(0)
    with pytest.raises(ctrl.ControllerError, match=r"\[batch, 4\]"):
        ctrl.Controller(0).log_prob_and_entropy(np.zeros((2, 5), np.int32))


# -- randomness ------------------------------------------------------------------
def test_seeds_make_sampling_reproducible():
    a, b = ctrl.Controller(0, seed=5), ctrl.Controller(0, seed=5)
    for _ in range(3):
        np.testing.assert_array_equal(a.sample(32).decisions, b.sample(32).decisions)
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])
    c = ctrl.Controller(0, seed=6)
    assert not np.array_equal(a.sample(32).decisions, c.sample(32).decisions)
    # An explicit seed gives the same draw and leaves the generator alone.
    state = a.rng.state.numpy().copy()
    np.testing.assert_array_equal(a.sample(32, seed=11).decisions, a.sample(32, seed=11).decisions)
    np.testing.assert_array_equal(a.rng.state.numpy(), state)
    assert not np.array_equal(a.sample(32).decisions, a.sample(32).decisions)


def test_compiled_draw_matches_the_eager_steps_and_traces_once():
    """`sample` is one compiled call; it must draw what its steps do one by one in eager
    mode (the generator's next key, the beam pick, the policy's draws), and one trace
    serves every draw of a batch size whatever the beam's size."""
    c = ctrl.Controller(1, seed=2)
    twin_rng = tf.random.Generator.from_state(c.rng.state.numpy(), c.rng.algorithm)
    prev_archs = tf.constant(random_decisions((0,), 3, 0))
    prev_hidden = (tf.random.normal([3, H], seed=1), tf.random.normal([3, H], seed=2))
    s = c.sample(6, prev_archs, prev_hidden)
    key = twin_rng.make_seeds(1)[:, 0]
    pick = tf.random.stateless_uniform([6], tf.random.experimental.stateless_fold_in(key, 0),
                                       minval=0, maxval=3, dtype=tf.int32)
    h0, c0 = (tf.gather(x, pick) for x in prev_hidden)
    decisions, log_probs, _, h, _ = c._draw(key, h0, c0)  # eager
    np.testing.assert_array_equal(s.beam_index, pick)
    np.testing.assert_array_equal(s.decisions, decisions)
    np.testing.assert_array_equal(s.archs, np.concatenate([np.take(prev_archs, pick, 0),
                                                           decisions], 1))
    np.testing.assert_allclose(s.log_probs, log_probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.hidden[0], h, rtol=1e-5, atol=1e-6)
    for k in (2, 3, 5, 5, 4):  # beams of any size after the first two
        c.sample(6, prev_archs[:k % 3 + 1], tuple(x[:k % 3 + 1] for x in prev_hidden))
    assert c._sample_continuing.experimental_get_tracing_count() <= 2
    fresh = ctrl.Controller(0, seed=2)
    for _ in range(4):
        fresh.sample(5)
    assert fresh._sample_fresh.experimental_get_tracing_count() == 1


def test_config_round_trip_rebuilds_the_same_initial_controller():
    c = ctrl.Controller((1,), hidden_size=16, seed=3)
    twin = ctrl.Controller.from_config(c.get_config())
    assert twin.cell_indices == (1,) and twin.hidden_size == 16
    for x, y in zip(c.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(x, y)
    # Heads of the same shape (C and SC) must not share initial weights.
    assert not np.array_equal(c.heads[0].kernel.numpy(), c.heads[3].kernel.numpy())


def test_checkpoint_resumes_the_same_random_sequence(tmp_path):
    c, r = ctrl.Controller(1, seed=1), ctrl.Reinforce()
    prev = (tf.constant(random_decisions((0,), 3, 0)),
            (tf.random.normal([3, H], seed=1), tf.random.normal([3, H], seed=2)))
    s = c.sample(4, prev[0], prev[1])
    r.update(c, s, tf.constant([1.0, 2.0, 3.0, 4.0]))
    path = tf.train.Checkpoint(c=c, r=r).save(str(tmp_path / "ckpt"))
    expected = []
    for step in range(3):
        s = c.sample(4, prev[0], prev[1])
        expected.append((s.archs.numpy(), r.update(c, s, tf.constant([step, 1.0, 0, 2]))))
    c2, r2 = ctrl.Controller(1, seed=99), ctrl.Reinforce()
    r2.build(c2)
    tf.train.Checkpoint(c=c2, r=r2).restore(path).assert_existing_objects_matched()
    for step, (archs, stats) in enumerate(expected):
        s = c2.sample(4, prev[0], prev[1])
        np.testing.assert_array_equal(s.archs, archs)
        got = r2.update(c2, s, tf.constant([step, 1.0, 0, 2]))
        for k in stats:
            np.testing.assert_allclose(got[k], stats[k], rtol=1e-5, atol=1e-6)


# -- REINFORCE -------------------------------------------------------------------
def test_reinforce_matches_closed_form():
    """Baseline, entropy bonus and gradient of -sum log pi * advantage, by hand."""
    coeff, decay = 0.5, 0.9
    c = ctrl.Controller(1, seed=2)
    r = ctrl.Reinforce(entropy_coeff=coeff, baseline_decay=decay,
                       optimizer=keras.optimizers.SGD(1.0), loss="independent")
    h0 = (tf.random.normal([5, H], seed=3), tf.random.normal([5, H], seed=4))
    baseline = None
    for step, rewards in enumerate([[1.0, 0.0, 2.0, 0.5, 0.0], [0.0, 3.0, 1.0, 1.0, 4.0]]):
        decisions = random_decisions((1,), 5, seed=step)
        _, ent, _ = numpy_policy(c, decisions, *[x.numpy() for x in h0])
        total = np.array(rewards) + coeff * ent.sum(1)
        baseline = total.mean() if baseline is None else (
            decay * baseline + (1 - decay) * total.mean())
        advantage = total - baseline
        before = [v.numpy() for v in c.trainable_variables]
        with tf.GradientTape() as tape:
            lp, _ = c.log_prob_and_entropy(decisions, h0)
            loss = -tf.reduce_sum(lp * tf.constant(advantage[:, None], tf.float32))
        grads = tape.gradient(loss, c.trainable_variables)
        stats = r.update(c, decisions, h0, tf.constant(rewards))
        np.testing.assert_allclose(stats["baseline"], baseline, rtol=1e-5)
        np.testing.assert_allclose(r.baseline.numpy(), baseline, rtol=1e-5)
        np.testing.assert_allclose(stats["reward_mean"], total.mean(), rtol=1e-5)
        np.testing.assert_allclose(stats["advantage_mean"], advantage.mean(), atol=1e-5)
        np.testing.assert_allclose(stats["entropy_mean"], ent.mean(), rtol=1e-5)
        np.testing.assert_allclose(stats["loss"], float(loss), rtol=1e-4, atol=1e-5)
        moved = 0.0
        for v, b, g in zip(c.trainable_variables, before, grads):
            g = tf.convert_to_tensor(g).numpy()  # embedding grads are sparse
            np.testing.assert_allclose(b - v.numpy(), g, atol=1e-5)
            moved += np.abs(g).sum()
        assert moved > 0


def test_first_update_has_zero_mean_advantage_and_defaults():
    r = ctrl.Reinforce()
    assert r.entropy_coeff == 1e-4 and r.baseline_decay == 0.9 and r.loss == "official"
    assert float(r.optimizer.learning_rate) == pytest.approx(3.5e-4)
    assert r.optimizer.beta_1 == 0.0 and r.optimizer.beta_2 == 0.9
    c = ctrl.Controller(0)
    before = [v.numpy().copy() for v in c.trainable_variables]
    stats = r.update(c, c.sample(1), tf.constant([5.0]))  # official: batch 1
    assert float(stats["advantage_mean"]) == 0.0 and float(stats["loss"]) == 0.0
    for v, b in zip(c.trainable_variables, before):  # zero gradient: Adam does not move
        np.testing.assert_array_equal(v.numpy(), b)
    r = ctrl.Reinforce(loss="independent")
    stats = r.update(c, c.sample(3), tf.constant([5.0, 5.0, 5.0]))
    assert float(stats["advantage_mean"]) == pytest.approx(0.0, abs=1e-6)
    assert float(stats["loss"]) == pytest.approx(0.0, abs=1e-5)


def _official_train_controller_loss(log_probs, entropies, reward, baseline, coeff, decay):
    """The official train_controller's arithmetic, transcribed (batch 1, torch shapes).

    ``log_probs`` [1, T]; ``entropies`` [T, 1] (torch.cat along dim 0);
    ``baseline`` [T, 1] or None. Returns (loss, new baseline).
    """
    rewards = tf.reshape(reward, [1, 1]) + coeff * entropies  # [T, 1]
    if baseline is None:
        baseline = rewards
    else:
        baseline = decay * tf.stop_gradient(baseline) + (1 - decay) * rewards
    adv = rewards - baseline
    return tf.reduce_sum(-log_probs * adv), baseline  # [1, T] * [T, 1] broadcast


def test_official_loss_matches_the_official_arithmetic():
    coeff, decay = 0.3, 0.9
    c = ctrl.Controller(2, seed=5)
    r = ctrl.Reinforce(entropy_coeff=coeff, baseline_decay=decay,
                       optimizer=keras.optimizers.SGD(1.0))
    h0 = (tf.random.normal([1, H], seed=6), tf.random.normal([1, H], seed=7))
    baseline = None
    for step, reward in enumerate([2.0, 3.5, 1.0]):
        decisions = random_decisions((2,), 1, seed=10 + step)
        with tf.GradientTape() as tape:
            lp, ent = c.log_prob_and_entropy(decisions, h0)
            loss, baseline = _official_train_controller_loss(
                lp, tf.transpose(ent), tf.constant(reward), baseline, coeff, decay)
        grads = tape.gradient(loss, c.trainable_variables)
        before = [v.numpy() for v in c.trainable_variables]
        stats = r.update(c, decisions, h0, tf.constant([reward]))
        np.testing.assert_allclose(stats["loss"], float(loss), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r.baseline.numpy(), baseline.numpy()[:, 0], rtol=1e-6)
        for v, b, g in zip(c.trainable_variables, before, grads):
            np.testing.assert_allclose(b - v.numpy(), tf.convert_to_tensor(g).numpy(),
                                       rtol=1e-5, atol=1e-5)
    r.reset_baseline()  # a new search iteration: zero advantage again
    stats = r.update(c, random_decisions((2,), 1, seed=20), h0, tf.constant([9.0]))
    assert float(stats["loss"]) == 0.0


def test_update_does_not_retrace_for_new_reward_values():
    c, r = ctrl.Controller(0), ctrl.Reinforce()
    for step in range(5):
        s = c.sample(4)
        r.update(c, s, tf.constant(np.random.default_rng(step).normal(size=4), tf.float32))
    assert r._update_fn.experimental_get_tracing_count() == 1


def test_bad_reward_input_is_refused():
    c, r = ctrl.Controller(0), ctrl.Reinforce()
    s = c.sample(3)
    with pytest.raises(ValueError, match="2 rewards for 3 samples"):
        r.update(c, s, tf.constant([1.0, 2.0]))
    with pytest.raises(ValueError, match="--baseline_decay"):
        ctrl.Reinforce(baseline_decay=1.0)


def test_controller_learns_a_rewarded_decision():
    """Reward 1 for pre-activation (C == 1) and 0.5 for bn: the policy should find both."""
    c = ctrl.Controller(0, seed=0)
    r = ctrl.Reinforce(learning_rate=3.5e-3)
    for _ in range(150):
        s = c.sample(8)
        d = s.decisions.numpy()
        r.update(c, s, tf.constant((d[:, 0] == 1) + 0.5 * (d[:, 1] == 1), tf.float32))
    s = c.sample(400, seed=1)
    d = s.decisions.numpy()
    assert (d[:, 0] == 1).mean() > 0.9
    assert (d[:, 1] == 1).mean() > 0.8
