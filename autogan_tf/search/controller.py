"""The AutoGAN RL controller: an LSTM policy over cell decisions, trained by REINFORCE.

One `Controller` decides the cells listed in ``cell_indices``. Multi-level
search (MLAS) gives every cell its own controller, ``cell_indices=(k,)``; the
controller of cell ``k`` continues the hidden states of the top-K architectures
kept when cell ``k - 1`` was finished (the beam). A single controller for the
whole generator (``cell_indices=(0, 1, 2)``) is the no-MLAS ablation.

Per decision the LSTM cell takes one step and a softmax head of that decision
picks an option. The first step sees a zero vector; each later step sees an
embedding of the previous decision. All decisions share one embedding table;
the previous decision's option is offset by the option counts of the decisions
before it (the layout of the official code).

Randomness comes from a `tf.random.Generator` owned by the controller, so a
checkpoint of the controller also fixes the architectures it samples next. Its
stream and its initial weights are the run seed's streams of its level
(`seeds.controller`, `seeds.controller_init`; the level is its first cell).

Initialisers follow the PyTorch defaults the official controller relied on
(uniform +-1/sqrt(hidden) for the LSTM and the heads, N(0, 1) embeddings, no
forget-gate bias of 1), seeded from ``seed``. The LSTM has PyTorch's two bias
vectors (input and recurrent), each trained: Adam moves their sum twice as
far per step as it would move a single bias.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from autogan_tf import config as config_lib
from autogan_tf import errors, seeds
from autogan_tf import search_space as ss
from autogan_tf.keras_compat import track

HIDDEN_SIZE = 100


class ControllerError(errors.AutoganError, ValueError):
    """Bad input to a controller (shapes of the beam, cell indices)."""


@dataclasses.dataclass(frozen=True)
class SampleResult:
    """What one call of `Controller.sample` drew.

    ``archs`` is the beam prefix (if any) followed by ``decisions``;
    ``initial_hidden`` is the (h, c) each sample started from (None: zeros),
    which `Reinforce.update` needs to recompute the log-probabilities.

    Attributes:
      archs: int32 ``[B, prefix + decisions]``, the full architecture vectors drawn.
      decisions: int32 ``[B, T]``, this controller's decisions only.
      beam_index: int32 ``[B]``, the beam entry each sample continued (None without a beam).
      log_probs: ``[B, T]`` log pi of each decision (None for `RandomSampler`).
      entropies: ``[B, T]`` policy entropies per step (None for `RandomSampler`).
      hidden: the LSTM ``(h, c)`` after the last decision, each ``[B, hidden_size]``: what
        the beam keeps for the next stage.
      initial_hidden: the ``(h, c)`` each sample started from, or None for zeros.
    """

    archs: tf.Tensor
    decisions: tf.Tensor
    beam_index: Optional[tf.Tensor]
    log_probs: Optional[tf.Tensor]
    entropies: Optional[tf.Tensor]
    hidden: Optional[tuple]
    initial_hidden: Optional[tuple] = None


def _as_cell_indices(cell_indices) -> tuple[int, ...]:
    if isinstance(cell_indices, (int, np.integer)):
        cell_indices = (int(cell_indices),)
    cells = tuple(int(i) for i in cell_indices)
    if not cells or cells != tuple(range(cells[0], cells[0] + len(cells))) or cells[0] < 0:
        raise ControllerError(
            f"cell_indices must be consecutive non-negative cells, got {cell_indices!r}")
    return cells


def prefix_length(first_cell: int) -> int:
    """Integers of the architecture vector before cell ``first_cell``.

    Args:
      first_cell: the first cell a controller decides (0-based).
    """
    return sum(ss.cell_vector_length(i) for i in range(first_cell))


EXCLUDED_LOGIT = -1e9  # finite: exp() is exactly 0 and 0 * log p stays 0, never NaN


def _logit_offsets(cell_indices, excluded_choices: str) -> tuple:
    """Per decision, None (every option allowed) or a float32 vector adding `EXCLUDED_LOGIT`
    to the logits of the options ``excluded_choices`` leaves out."""
    return tuple(None if len(options) == size else np.array(
        [0.0 if k in options else EXCLUDED_LOGIT for k in range(size)], np.float32)
        for size, options in ss.decision_options(cell_indices, excluded_choices))


class Controller(keras.Model):
    """LSTM policy over the decisions of ``cell_indices`` (see the module docstring).

    All weights are created in the constructor, so a checkpoint can be restored into a fresh
    controller before its first call.

    Args:
      cell_indices: the cell (an int) or consecutive cells (a sequence) it decides.
      hidden_size: the LSTM's size (``--hid_size``).
      seed: the run's seed: the initial weights and the samples are its streams of this
        controller's level (`seeds`).
      excluded_choices: choices it never draws (``--excluded_choices``, e.g. ``"norm=in"``):
        their logits are pushed to `EXCLUDED_LOGIT`, so they have probability 0 in sampling,
        log-probabilities and entropies alike.
      **kwargs: passed to `keras.Model` (e.g. ``name``).

    Raises:
      ControllerError: ``cell_indices`` empty, negative or not consecutive.
      search_space.ArchError: ``excluded_choices`` is invalid.
    """

    def __init__(self, cell_indices=0, hidden_size: int = HIDDEN_SIZE, seed: int = 0,
                 excluded_choices: str = "", **kwargs):
        super().__init__(**kwargs)
        self.cell_indices = _as_cell_indices(cell_indices)
        self.hidden_size = int(hidden_size)
        self.seed = int(seed)
        self.excluded_choices = str(excluded_choices)
        self.tokens = tuple(size for i in self.cell_indices for size in ss.decision_sizes(i))
        self._logit_offsets = _logit_offsets(self.cell_indices, self.excluded_choices)
        self.offsets = tuple(int(x) for x in np.cumsum((0,) + self.tokens[:-1]))
        bound = 1.0 / float(np.sqrt(self.hidden_size))

        level = self.cell_indices[0]

        def init_seed(k):
            return seeds.integer(self.seed, seeds.controller_init(level, k))

        def uniform(k):
            return keras.initializers.RandomUniform(-bound, bound, seed=init_seed(k))

        self.cell = keras.layers.LSTMCell(
            self.hidden_size, kernel_initializer=uniform(1), recurrent_initializer=uniform(2),
            bias_initializer=uniform(3), unit_forget_bias=False, name="lstm")
        self.embedding = keras.layers.Embedding(
            sum(self.tokens), self.hidden_size,
            embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=init_seed(4)),
            name="embedding")
        # Direct attributes, so tf.train.Checkpoint sees them (see keras_compat.track).
        self.heads = [track(self, f"head{t}", keras.layers.Dense(
            size, kernel_initializer=uniform(10 + 2 * t), bias_initializer=uniform(11 + 2 * t),
            name=f"head{t}")) for t, size in enumerate(self.tokens)]
        self.cell.build((None, self.hidden_size))
        # PyTorch's LSTMCell has two biases, bias_ih and bias_hh, each trained by
        # Adam: their sum moves twice as far per step as one Keras bias would.
        # The cell's own bias is bias_ih; this is bias_hh (see `_lstm`).
        self.recurrent_bias = self.add_weight(
            shape=(4 * self.hidden_size,), initializer=uniform(5), name="recurrent_bias")
        self.embedding.build((None,))
        for head in self.heads:
            head.build((None, self.hidden_size))
        self.rng = seeds.generator(self.seed, seeds.controller(level))

    # -- structure --------------------------------------------------------------
    @property
    def num_decisions(self) -> int:
        """Decisions per sample: 4 per cell, plus a skip mask for cells after the first."""
        return len(self.tokens)

    @property
    def prefix_length(self) -> int:
        """Length of the beam architectures this controller continues."""
        return prefix_length(self.cell_indices[0])

    def get_config(self):
        """The constructor arguments, for Keras serialisation."""
        config = super().get_config()
        config.update(cell_indices=list(self.cell_indices), hidden_size=self.hidden_size,
                      seed=self.seed, excluded_choices=self.excluded_choices)
        return config

    # -- one step ---------------------------------------------------------------
    def _step(self, t, previous, state):
        """Logits of decision ``t`` and the new (h, c); ``previous`` is decision t-1 or None."""
        if t == 0:
            x = tf.zeros_like(state[0])
        else:
            x = self.embedding(previous + self.offsets[t - 1])
        h, c = self._lstm(x, state)
        logits = self.heads[t](h)
        if self._logit_offsets[t] is not None:  # excluded choices
            logits += self._logit_offsets[t]
        return logits, (h, c)

    def _lstm(self, x, state):
        """One LSTM step with PyTorch's two biases (gate order i, f, g, o, as Keras)."""
        h, c = state
        cell = self.cell
        z = (tf.matmul(x, cell.kernel) + tf.matmul(h, cell.recurrent_kernel) + cell.bias
             + self.recurrent_bias)
        i, f, g, o = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c

    def _zeros(self, batch_size):
        z = tf.zeros([batch_size, self.hidden_size])
        return z, z

    # -- teacher forcing --------------------------------------------------------
    def log_prob_and_entropy(self, decisions, initial_hidden=None):
        """Per-step log pi(decision) and policy entropy, [B, T] each; differentiable.

        The policy is run with teacher forcing: each step is fed the given decision, not a
        sampled one, so the log-probabilities of earlier samples can be recomputed under
        the current weights for the policy gradient.

        Args:
          decisions: int ``[B, num_decisions]``, the decisions to score.
          initial_hidden: the ``(h, c)`` each row starts from, each ``[B, hidden_size]``;
            None starts from zeros.

        Returns:
          ``(log_probs, entropies)``, float32 ``[B, num_decisions]`` each.

        Raises:
          ControllerError: ``decisions`` has another shape.
        """
        decisions = tf.convert_to_tensor(decisions, tf.int32)
        if decisions.shape.rank != 2 or decisions.shape[1] != self.num_decisions:
            raise ControllerError(f"decisions must be [batch, {self.num_decisions}], "
                                  f"got shape {decisions.shape}")
        state = (self._zeros(tf.shape(decisions)[0]) if initial_hidden is None
                 else tuple(tf.convert_to_tensor(s, tf.float32) for s in initial_hidden))
        log_probs, entropies = [], []
        previous = None
        for t in range(self.num_decisions):
            logits, state = self._step(t, previous, state)
            log_p = tf.nn.log_softmax(logits)
            entropies.append(-tf.reduce_sum(tf.exp(log_p) * log_p, axis=1))
            log_probs.append(tf.gather(log_p, decisions[:, t], axis=1, batch_dims=1))
            previous = decisions[:, t]
        return tf.stack(log_probs, 1), tf.stack(entropies, 1)

    def call(self, decisions, initial_hidden=None):
        """`log_prob_and_entropy`, as the Keras call.

        Args:
          decisions: int ``[B, num_decisions]``.
          initial_hidden: starting ``(h, c)``, or None for zeros.

        Returns:
          ``(log_probs, entropies)``, ``[B, num_decisions]`` each.
        """
        return self.log_prob_and_entropy(decisions, initial_hidden)

    # -- sampling ---------------------------------------------------------------
    def _check_beam(self, prev_archs, prev_hidden):
        if (prev_archs is None) != (prev_hidden is None):
            raise ControllerError("prev_archs and prev_hidden go together: give both or neither")
        if prev_archs is None:
            return None, None
        prev_archs = tf.convert_to_tensor(prev_archs, tf.int32)
        h, c = (tf.convert_to_tensor(s, tf.float32) for s in prev_hidden)
        k = prev_archs.shape[0]
        if prev_archs.shape.rank != 2 or prev_archs.shape[1] != self.prefix_length:
            raise ControllerError(
                f"the controller of cells {list(self.cell_indices)} continues architectures of "
                f"{self.prefix_length} integers; prev_archs has shape {prev_archs.shape}")
        if not k:
            raise ControllerError("prev_archs is empty")
        for name, s in (("h", h), ("c", c)):
            if s.shape != (k, self.hidden_size):
                raise ControllerError(f"prev_hidden {name} must be [{k}, {self.hidden_size}], "
                                      f"got {s.shape}")
        return prev_archs, (h, c)

    def sample(self, batch_size: int, prev_archs=None, prev_hidden=None,
               seed: Optional[int] = None) -> SampleResult:
        """Draw ``batch_size`` architectures, continuing beam entries picked uniformly at random.

        Without ``seed`` the controller's own generator advances (and is
        checkpointed); with ``seed`` the draw depends on the seed only.

        Args:
          batch_size: how many architectures.
          prev_archs: the beam's prefixes, int ``[K, prefix_length]``, or None for the first
            cell(s).
          prev_hidden: their ``(h, c)``, each ``[K, hidden_size]``; given exactly when
            ``prev_archs`` is.
          seed: an int for a draw independent of the controller's generator, or None.

        Returns:
          A `SampleResult` with log-probabilities and entropies.

        Raises:
          ControllerError: ``batch_size`` below 1, or a beam of the wrong shape, or only one
            of ``prev_archs`` and ``prev_hidden``.
        """
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ControllerError(f"batch_size must be positive, got {batch_size}")
        prev_archs, prev_hidden = self._check_beam(prev_archs, prev_hidden)
        seed = None if seed is None else tf.constant([int(seed), 0x5EED], tf.int64)
        if prev_archs is None:
            return SampleResult(**self._sample_fresh(batch_size, seed))
        return SampleResult(**self._sample_continuing(batch_size, seed, prev_archs, prev_hidden))

    # One compiled call per draw: the search draws a few architectures per shared step, and
    # as separate eager ops (the generator's seeds, the beam's gather) the draw cost 3-4x more.
    def _key(self, seed):
        """The draw's stateless key: from ``seed`` if given, else the next of ``self.rng``."""
        return self.rng.make_seeds(1)[:, 0] if seed is None else seed

    @tf.function(reduce_retracing=True)
    def _sample_fresh(self, batch_size, seed):
        h0, c0 = self._zeros(batch_size)
        decisions, log_probs, entropies, h, c = self._draw(self._key(seed), h0, c0)
        return dict(archs=decisions, decisions=decisions, beam_index=None, log_probs=log_probs,
                    entropies=entropies, hidden=(h, c), initial_hidden=None)

    @tf.function(reduce_retracing=True)
    def _sample_continuing(self, batch_size, seed, prev_archs, prev_hidden):
        key = self._key(seed)
        beam_index = tf.random.stateless_uniform(
            [batch_size], tf.random.experimental.stateless_fold_in(key, 0),
            minval=0, maxval=tf.shape(prev_archs)[0], dtype=tf.int32)
        h0, c0 = (tf.gather(s, beam_index) for s in prev_hidden)
        decisions, log_probs, entropies, h, c = self._draw(key, h0, c0)
        archs = tf.concat([tf.gather(prev_archs, beam_index), decisions], 1)
        return dict(archs=archs, decisions=decisions, beam_index=beam_index, log_probs=log_probs,
                    entropies=entropies, hidden=(h, c), initial_hidden=(h0, c0))

    def _draw(self, key, h0, c0):
        """Decisions drawn step by step from the policy, with stateless ops keyed by ``key``."""
        state = (h0, c0)
        previous = None
        decisions, log_probs, entropies = [], [], []
        for t in range(self.num_decisions):
            logits, state = self._step(t, previous, state)
            log_p = tf.nn.log_softmax(logits)
            step_key = tf.random.experimental.stateless_fold_in(key, t + 1)
            choice = tf.random.stateless_categorical(logits, 1, step_key, dtype=tf.int32)[:, 0]
            decisions.append(choice)
            log_probs.append(tf.gather(log_p, choice, axis=1, batch_dims=1))
            entropies.append(-tf.reduce_sum(tf.exp(log_p) * log_p, axis=1))
            previous = choice
        return (tf.stack(decisions, 1), tf.stack(log_probs, 1), tf.stack(entropies, 1),
                state[0], state[1])


class Reinforce(tf.Module):
    """REINFORCE with a moving-average baseline and an entropy term in the reward.

    One instance trains one controller (its Adam slots and baseline are built
    for it by `build`). Two forms of the loss (``loss``):

    * ``"official"`` (default), the official ``train_controller``: the reward
      of decision t of sample b is ``R_b + entropy_coeff * H_bt`` with the
      entropy's gradient kept; the baseline is one value per decision, an
      exponential moving average of the batch mean of those rewards,
      initialised by the first batch; ``A_bt = total_bt - baseline_t`` taken
      against the baseline *after* this batch's update (so the first update
      after a restart has zero advantage and no gradient), the update term
      keeping its gradient as in the official code; and the loss is
      ``-sum_b (sum_t log pi(a_bt)) * (sum_t A_bt)``. In the official code
      that product comes from broadcasting a ``[1, T]`` log-prob row against a
      ``[T, 1]`` advantage column, which works for ``--ctrl_sample_batch 1``
      only; for one sample this is that loss exactly, for more it is the
      same per sample. The entropy term's gradient is
      ``-(sum_t log pi) * decay * entropy_coeff * grad(sum_t H)``, so (the
      log-probabilities being negative) it *lowers* the entropy: the official
      code's effective entropy term, kept for fidelity.
    * ``"independent"``: the textbook form: reward ``R_b + entropy_coeff *
      sum_t H_bt`` with the entropies constant, a scalar baseline of the
      batch-mean reward, loss ``-sum_{b,t} log pi(a_bt) * A_b``.

    ``reset_baseline()`` restarts the baseline (the official code does at
    every search iteration; `search` does unless ``--baseline=persistent``).

    Defaults: ``entropy_coeff=1e-4`` is the paper's value (the official code's
    flag default, which its search script leaves, is 1e-3); Adam lr 3.5e-4
    with betas (0.0, 0.9), the ``--beta1/--beta2`` the official search script
    passes to every optimizer, the controller's included.

    Args:
      learning_rate: Adam's learning rate (``--ctrl_lr``).
      beta1: Adam's beta_1.
      beta2: Adam's beta_2.
      entropy_coeff: weight of the entropy term in the reward.
      baseline_decay: the moving-average decay of the baseline.
      optimizer: a Keras optimizer to use instead of the Adam built from the three above.
      loss: ``"official"`` or ``"independent"`` (see above).
      name: the module's name.

    Raises:
      ValueError: an out-of-range ``baseline_decay`` or ``entropy_coeff``, or an unknown
        ``loss`` (from `config.check_values`).
    """

    def __init__(self, learning_rate: float = 3.5e-4, beta1: float = 0.0, beta2: float = 0.9,
                 entropy_coeff: float = 1e-4, baseline_decay: float = 0.9, optimizer=None,
                 loss: str = "official", name=None):
        super().__init__(name=name)
        config_lib.check_values(baseline_decay=baseline_decay, entropy_coeff=entropy_coeff,
                            ctrl_loss=loss)
        self.entropy_coeff = float(entropy_coeff)
        self.baseline_decay = float(baseline_decay)
        self.loss = loss
        self.optimizer = optimizer or keras.optimizers.Adam(learning_rate, beta_1=beta1,
                                                            beta_2=beta2)
        self.baseline = None  # [num_decisions], created by build()
        self.has_baseline = tf.Variable(False, trainable=False, name="has_baseline")
        self._update_fn = tf.function(self._update, reduce_retracing=True)

    def build(self, controller: Controller):
        """Create the baseline and Adam slots for ``controller`` (eagerly, so updates trace once).

        Call before restoring a checkpoint into this object.

        Args:
          controller: the controller this object trains (its number of decisions sizes the
            baseline; its trainable variables get the Adam slots).
        """
        if self.baseline is None:
            self.baseline = tf.Variable(tf.zeros([controller.num_decisions]), trainable=False,
                                        name="baseline")
        if not self.optimizer.built:
            self.optimizer.build(controller.trainable_variables)

    def reset_baseline(self):
        """Forget the baseline: the next update starts it from its batch (zero advantage)."""
        self.has_baseline.assign(False)

    def update(self, controller: Controller, decisions, initial_hidden=None, rewards=None):
        """One policy-gradient step. Also accepts ``update(controller, sample, rewards)``.

        Returns scalar tensors: loss, reward_mean (with the entropy term),
        baseline (mean over decisions), advantage_mean, entropy_mean (per decision).

        Args:
          controller: the controller to train (the one `build` was called with).
          decisions: int ``[B, T]`` decisions it sampled, or a `SampleResult` (then its
            ``initial_hidden`` is used and the third positional argument is the rewards).
          initial_hidden: the ``(h, c)`` the samples started from; None for zeros.
          rewards: ``[B]`` rewards of the samples.

        Returns:
          A dict of the scalar tensors above.

        Raises:
          ValueError: no rewards, or not one reward per sample.
        """
        if isinstance(decisions, SampleResult):
            if rewards is None:
                rewards, initial_hidden = initial_hidden, decisions.initial_hidden
            decisions = decisions.decisions
        if rewards is None:
            raise ValueError("Reinforce.update needs rewards")
        decisions = tf.convert_to_tensor(decisions, tf.int32)
        rewards = tf.reshape(tf.convert_to_tensor(rewards, tf.float32), [-1])
        if rewards.shape[0] != decisions.shape[0]:
            raise ValueError(f"{rewards.shape[0]} rewards for {decisions.shape[0]} samples")
        if initial_hidden is None:
            initial_hidden = controller._zeros(decisions.shape[0])
        h0, c0 = (tf.convert_to_tensor(s, tf.float32) for s in initial_hidden)
        self.build(controller)
        return self._update_fn(controller, decisions, h0, c0, rewards)

    def _moving_baseline(self, batch_mean):
        """The baseline after this batch: restart from it, or decay towards it."""
        decay = self.baseline_decay
        previous = tf.stop_gradient(tf.convert_to_tensor(self.baseline))
        return tf.where(self.has_baseline, decay * previous + (1 - decay) * batch_mean,
                        batch_mean)

    def policy_loss(self, log_probs, entropies, rewards):
        """The loss, rewards with the entropy term, baseline and advantages of one batch.

        ``log_probs``, ``entropies``: ``[B, T]``; ``rewards``: ``[B]``.

        Separate from the update so the two loss forms can be checked on fixed numbers.
        Reads the baseline variable but does not assign it.

        Args:
          log_probs: ``[B, T]`` log pi of the sampled decisions.
          entropies: ``[B, T]`` policy entropies.
          rewards: ``[B]`` rewards of the samples.

        Returns:
          ``(loss, total, baseline, advantage)``: the scalar loss, the rewards with the entropy
          term (``[B, T]`` official, ``[B]`` independent), the new baseline ``[T]`` and the
          advantages.
        """
        c = self.entropy_coeff
        if self.loss == "official":
            total = rewards[:, None] + c * entropies  # [B, T], entropy gradient kept
            baseline = self._moving_baseline(tf.reduce_mean(total, axis=0))
            advantage = total - baseline
            loss = -tf.reduce_sum(tf.reduce_sum(log_probs, 1) * tf.reduce_sum(advantage, 1))
        else:
            total = rewards + c * tf.stop_gradient(tf.reduce_sum(entropies, axis=1))  # [B]
            mean = tf.reduce_mean(total)
            baseline = self._moving_baseline(tf.fill(tf.shape(self.baseline), mean))
            advantage = total - baseline[0]
            loss = -tf.reduce_sum(log_probs * tf.stop_gradient(advantage)[:, None])
        return loss, total, baseline, advantage

    def _update(self, controller, decisions, h0, c0, rewards):
        variables = controller.trainable_variables
        with tf.GradientTape() as tape:
            log_probs, entropies = controller.log_prob_and_entropy(decisions, (h0, c0))
            loss, total, baseline, advantage = self.policy_loss(log_probs, entropies, rewards)
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        self.baseline.assign(tf.stop_gradient(baseline))
        self.has_baseline.assign(True)
        return {"loss": loss, "reward_mean": tf.reduce_mean(total),
                "baseline": tf.reduce_mean(baseline),
                "advantage_mean": tf.reduce_mean(advantage),
                "entropy_mean": tf.reduce_mean(entropies)}


class RandomSampler(tf.Module):
    """Uniform architectures with the controller's interface (``--search=random``).

    Args:
      cell_indices: the cells it decides (as `Controller`).
      seed: the run's seed; the samples are its stream of this sampler's level
        (`seeds.controller`, the level being the first cell), checkpointed with it.
      excluded_choices: choices it never draws (as `Controller`); the others stay uniform.
    """

    def __init__(self, cell_indices, seed, excluded_choices: str = ""):
        super().__init__(name="random_sampler")
        self.cell_indices = _as_cell_indices(cell_indices)
        self.rng = seeds.generator(seed, seeds.controller(self.cell_indices[0]))
        self._options = ss.decision_options(self.cell_indices, excluded_choices)

    def sample(self, batch_size, prev_archs=None, prev_hidden=None):
        """``batch_size`` uniform decisions, each appended to a uniformly picked beam entry
        (``prev_archs``/``prev_hidden``, whose states are passed through).

        Args:
          batch_size: how many architectures.
          prev_archs: the beam's prefixes ``[K, L]``, or None.
          prev_hidden: their ``(h, c)``, or None (then ``hidden`` of the result is None).

        Returns:
          A `SampleResult` without log-probabilities.
        """
        cols = []
        for size, options in self._options:
            draw = self.rng.uniform([batch_size], 0, len(options), dtype=tf.int32)
            cols.append(draw if len(options) == size else tf.gather(options, draw))
        decisions = tf.stack(cols, 1)
        if prev_archs is not None:
            pick = self.rng.uniform([batch_size], 0, prev_archs.shape[0], dtype=tf.int32)
            archs = tf.concat([tf.gather(prev_archs, pick), decisions], 1)
        else:
            archs = decisions
        hidden = None
        if prev_hidden is not None:
            hidden = tuple(tf.gather(h, pick) for h in prev_hidden)
        return SampleResult(archs=archs, decisions=decisions, beam_index=None,
                            log_probs=None, entropies=None, hidden=hidden)
