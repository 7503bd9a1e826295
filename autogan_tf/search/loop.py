"""The AutoGAN search loop: shared GAN training, controller training, growth.

One search iteration (as the official ``search.py``):

1. train the shared supernet GAN for ``shared_iters`` generator iterations,
   sampling a new architecture from the controller for every D step; with
   dynamic resetting, stop early when the variance (``reset_statistic="var"``,
   the official code and the paper's 1e-3; "std" compares the standard
   deviation) of the last ``reset_window`` G or D losses falls below a threshold;
2. train the controller with REINFORCE for ``ctrl_steps`` steps, the reward
   being the Inception Score (or reciprocal FID, or -ln KID) of the sampled
   architectures at their native resolution; the REINFORCE baseline restarts at the start
   of this phase (``ctrl_baseline="iteration"``, as the official code;
   "persistent" keeps it across iterations);
3. if the shared training was stopped by a reset, re-initialise the shared G
   and D (never the controller).

At each grow step (and at the end) the current controller proposes
``num_candidates`` architectures; the ``topk`` best by reward, with the
controller's hidden states, form the beam the next stage's new controller
extends (multi-level architecture search).

The parts live beside this loop in `autogan_tf.search`, one concept each:
`shared_gan` (the supernet and its training), `state` (the position and
history), `beam` (the top-K kept at a stage end), `rewards` (scoring an
architecture), `dynamic_reset` (the loss windows) and `log` (what is
reported); shared with the final training, `checkpointing` and `lifecycle`
(the run's start, roll-back after NaN/Inf, preemption).

Everything that must survive a crash is tracked by one `tf.train.Checkpoint`:
the shared G and D with their optimizers, every controller with its optimizer
and baseline, the iteration, the phase inside it and its step, the beam, the
loss windows, the random generators, the data iterators (one per stage, so a
resumed run sees the same batches as an uninterrupted one) and the history.
Rerunning the same command after ``kill -9`` resumes from the last complete
checkpoint; the initial and re-initialised weights are drawn from ``seed``
(and the iteration), so a resumed search is the same computation as an
uninterrupted one.

Faults: NaN/Inf in a shared-GAN loss (or a reward) restores the last good
checkpoint and retries with the next batches of data, at most
``max_nan_restores`` times; SIGTERM/SIGINT checkpoint after the current
generator iteration (or controller step) and stop cleanly.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from absl import logging

from autogan_tf import (checkpointing, data, distribute, errors, lifecycle, phase_timer, rundir,
                        runlog)
from autogan_tf import search_space as ss
from autogan_tf.config import SearchConfig
from autogan_tf.metrics import label_free, scorer
from autogan_tf.search import beam as beam_lib
from autogan_tf.search import controller as ctrl_lib
from autogan_tf.search import dynamic_reset, shared_gan
from autogan_tf.search import log as search_log
from autogan_tf.search import rewards as rewards_lib
from autogan_tf.search import state as search_state

# Settings that must match between a search and the --model_dir it resumes from.
STRUCTURAL_KEYS = ("gf_dim", "df_dim", "d_minibatch_std", "latent_dim", "bottom_width",
                   "conditional", "num_classes",
                   "num_cells", "hid_size", "search", "mlas", "topk", "num_candidates",
                   "grow_steps", "n_critic", "reset_window", "dataset", "excluded_choices")


def build_samplers(config: SearchConfig):
    """The architecture samplers, one per level (per cell with mlas, else one), and their
    REINFORCE updaters (None for random search).

    Each sampler draws from the run seed's stream of its level (`seeds.controller`), so the
    levels and the shared GAN's noise draw independently; each updater is built before any
    checkpoint restore, which needs its variables to exist.

    Args:
      config: the `config.SearchConfig` (``num_cells``, ``mlas``, ``search``, controller
        settings).

    Returns:
      ``(samplers, reinforces)``, two lists of the same length.
    """
    c = config
    samplers, reinforces = [], []
    for level in range(c.num_cells if c.mlas else 1):
        cells = (level,) if c.mlas else tuple(range(c.num_cells))
        if c.search == "random":
            samplers.append(ctrl_lib.RandomSampler(cells, c.seed, c.excluded_choices))
            reinforces.append(None)
            continue
        samplers.append(ctrl_lib.Controller(cells, hidden_size=c.hid_size,
                                            seed=c.seed,
                                            excluded_choices=c.excluded_choices,
                                            name=f"controller{level}"))
        reinforce = ctrl_lib.Reinforce(
            learning_rate=c.ctrl_lr, entropy_coeff=c.entropy_coeff,
            baseline_decay=c.baseline_decay, loss=c.ctrl_loss, name=f"reinforce{level}")
        reinforce.build(samplers[-1])  # baseline and Adam slots: before any checkpoint restore
        reinforces.append(reinforce)
    return samplers, reinforces


class Search(lifecycle.LongRun):
    """One search: its parts and the steps of the algorithm; `run()` drives it to the end.

    The parts: the shared GAN (`shared_gan.SharedGAN`), the samplers
    (`build_samplers`), the position and history (`state.SearchState`), the
    beam (`beam.Beam`), the rewards (`rewards.Rewards`), the dynamic-reset
    monitor (`dynamic_reset.ResetMonitor`), the log (`log.SearchLog`) and the
    checkpoints (`checkpointing.RunCheckpoints`); `lifecycle.LongRun` rolls back
    after NaN/Inf and stops at a signal.

    Args:
      config: the `config.SearchConfig`.
      model_dir: where checkpoints, logs and the result go (only the chief writes).
      reward_fn: ``(search, arch, stage, seed) -> float`` (see `rewards`).
      strategy: the shared GAN trains data-parallel under it (batches are
        global) and reward images are generated and classified split across
        its replicas. The controllers stay on the host, outside the strategy:
        on every worker they see the same gathered rewards from the same seeds
        and so make the same samples and updates.
      sync_bn: synchronise the supernet's output batch norm across replicas
        (None: whenever there are several).
      progress: show a progress bar of the shared training.
    """

    def __init__(self, config: SearchConfig, model_dir: str, reward_fn=None, strategy=None,
                 sync_bn: bool | None = None, progress: bool = True):
        c = self.config = config
        self.progress = progress
        strategy = strategy or tf.distribute.get_strategy()
        if sync_bn is None:
            sync_bn = strategy.num_replicas_in_sync > 1
        self.shared = shared_gan.SharedGAN(c, strategy, sync_bn)
        self.samplers, self.reinforces = build_samplers(c)
        self.state = search_state.SearchState()
        self.beam = beam_lib.Beam(c.topk, c.hid_size, c.num_cells, c.mlas)
        self.rewards = rewards_lib.Rewards(reward_fn, c.seed)
        self.reset_monitor = dynamic_reset.ResetMonitor(c.reset_window, c.reset_statistic,
                                                        c.reset_threshold)
        checkpoints = checkpointing.RunCheckpoints(
            self._state_items(), self.shared.data_items(), model_dir,
            max_to_keep=c.keep_checkpoints, fresh_data=self.shared.fresh_data)
        super().__init__(model_dir, checkpoints, c.max_nan_restores,
                         search_log.SearchLog(model_dir, distribute.is_chief(), self.state, c),
                         strategy)
        self.timer = phase_timer.PhaseTimer()

    def _state_items(self) -> dict:
        """Everything of the search but the data: what a NaN/Inf roll-back restores."""
        items = dict(self.shared.checkpoint_items())
        for level, (sampler, reinforce) in enumerate(zip(self.samplers, self.reinforces)):
            items[f"sampler{level}"] = sampler
            if reinforce is not None:
                items[f"reinforce{level}"] = reinforce
        for part in (self.state, self.beam, self.rewards, self.reset_monitor):
            items.update(part.checkpoint_items())
        return items

    @property
    def generator(self):
        """The supernet generator."""
        return self.shared.generator

    def images(self, arch, num, stage, seed):
        """uint8 images of ``arch`` at ``stage`` (what reward functions score).

        Args:
          arch: an architecture vector (or prefix; zero-padded).
          num: how many images.
          stage: the stage whose resolution is generated.
          seed: the noise seed.

        Returns:
          A uint8 tensor ``[num, H, W, 3]`` (`rewards.SupernetImages`).
        """
        with self.timer.phase("sample_images"):
            return self.shared.images(arch, num, stage, seed)

    # -- the algorithm --------------------------------------------------------------
    def advance(self):
        """Search to the last iteration, from the checkpointed iteration, phase and step.

        Raises:
          lifecycle.Diverged: a loss, a weight or a reward became NaN/Inf.
          lifecycle.Preempted: a signal stopped the search (after checkpointing).
        """
        while self.state.iteration < self.config.max_search_iters:
            self._run_iteration()

    def position(self) -> dict:
        """``{"iteration", "phase", "phase_step"}`` (`state.SearchState.position`)."""
        return self.state.position()

    def log_event(self, record: dict):
        """Log ``record`` as a search event (also shown on the terminal, `log.SearchLog.event`).

        Args:
          record: the event's fields.
        """
        self.log.event(record)

    def _run_iteration(self):
        """The rest of the current search iteration, from the checkpointed phase and step:
        growth (at a grow step), shared GAN training, controller training, dynamic reset."""
        if self._growth_due():
            self.grow()
        if self.state.phase == search_state.SHARED:
            self.train_shared()
            self.state.start_controller_phase()
            self.safe_point(saved=self.save())
        if self.state.phase == search_state.CONTROLLER:
            self.train_controller()
            if self.state.pending_reset:
                with self.timer.phase("dynamic_reset"):
                    self.reinitialise_shared()
            iteration = self.state.iteration
            self.state.next_iteration()
            saved = self.save()
            self.log.phases(iteration, *self.timer.pop())
            self.safe_point(saved=saved)

    def train_shared(self):
        """Train the shared GAN for the rest of this iteration's shared phase, an architecture
        from the controller per D step; stops early when a dynamic reset fires."""
        c, stage = self.config, self.stage
        phase = self.timer.phase
        while self.state.step < c.gen_iters_per_search_iter:
            with phase("arch_sampling"):
                archs = self.sample(c.n_critic).archs
            with phase("shared_training"):
                out = self.shared.train_iteration(archs, stage)
                finite = bool(out["finite"])  # waits for the step
            if not finite:
                raise lifecycle.Diverged("the shared GAN's losses or weights are NaN/Inf")
            step = self.state.count_step()
            with phase("dynamic_reset"):
                self.reset_monitor.push(out["d_losses"], out["g_loss"])
            with phase("shared_logging"):
                self.log.shared_step(out, stage, self.progress)
            with phase("dynamic_reset"):
                fired = c.dynamic_reset and self._reset_fired(stage)
            if fired:
                return
            saved = self.save() if c.save_every and step % c.save_every == 0 else None
            self.safe_point(saved)

    def train_controller(self):
        """Train this stage's controller with REINFORCE for the rest of the controller phase."""
        stage = self.stage
        sampler, reinforce = self._samplers(stage)
        if (reinforce is not None and self.config.ctrl_baseline == "iteration"
                and self.state.step == 0):
            reinforce.reset_baseline()  # the official baseline lives one search iteration
        steps = []
        while self.state.step < self.config.ctrl_steps:
            steps.append(self._controller_step(stage, sampler, reinforce))
            self.safe_point()
        with self.timer.phase("controller_logging"):
            self.log.controller_summary(stage, steps)

    def grow(self):
        """Multi-level search: the finished stage's top-K become the beam the next stage's
        controller extends by one cell."""
        stage = self.stage
        archs, hidden, rewards = self.top_k(stage - 1)
        with self.timer.phase("growth_logging"):
            self._record_stage(stage - 1, archs, rewards)
        self.beam.set(archs, hidden)
        self.log.event({"event": "grow", "stage": stage})
        self.state.append("stage_changes", {"iteration": self.state.iteration, "stage": stage})
        self.safe_point(saved=self.save())

    def top_k(self, stage):
        """Sample ``num_candidates`` architectures, score them, keep the best ``topk``.

        Args:
          stage: the stage whose sampler proposes the candidates (and whose resolution
            scores them).

        Returns:
          ``(archs, (h, c), rewards)``, best first (see `beam.best`).
        """
        c = self.config
        with self.timer.phase("top_k"):
            sample = self.sample(c.num_candidates, stage)
            archs = sample.archs.numpy().tolist()
            return beam_lib.best(archs, sample.hidden, self.score(archs, stage), c.topk,
                                 c.hid_size)

    def reinitialise_shared(self):
        """Dynamic reset, after the controller phase: fresh weights for the shared G and D."""
        self.shared.reinitialise(self.state.iteration)
        self.log.event({"event": "reinitialised_shared_gan"})
        self.state.set_pending_reset(False)

    def finish(self) -> dict:
        """The final stage's top-K (sampled now unless recorded), written to the result file.

        Also draws the best architecture (`log.SearchLog.found_architecture`).

        Returns:
          The result: ``top_archs`` (best first, each with ``arch``, ``reward`` and
          ``arch_str``), ``stage_results``, ``resets``, ``stage_changes`` and ``config``.

        Raises:
          errors.RunError: a reward of the final top-K is NaN/Inf.
        """
        stage = self.config.num_cells - 1
        done = [r for r in self.state.records("stage_results") if r["stage"] == stage]
        if done:
            final = done[-1]["top_archs"]
        else:
            try:
                archs, _, rewards = self.top_k(stage)
            except lifecycle.Diverged as e:
                raise errors.RunError(f"{e} in the final top-k of the search; the last "
                                      f"checkpoint is kept in {self.checkpoints.directory}") \
                    from None
            self._record_stage(stage, archs, rewards)
            self.save()
            final = [{"arch": a, "reward": r} for a, r in zip(archs, rewards)]
        result = self._result(final)
        if self.chief:
            runlog.write_json_atomic(os.path.join(self.model_dir, rundir.SEARCH_RESULT), result)
        self.log.found_architecture(result["top_archs"][0]["arch_str"])
        self.log.event({"event": "finished", "best_arch": result["top_archs"][0]["arch_str"],
                        "best_reward": result["top_archs"][0]["reward"]})
        return result

    # -- the steps' parts -------------------------------------------------------------
    @property
    def stage(self) -> int:
        """The current stage (index of the last active cell)."""
        return self.config.stage_at(self.state.iteration)

    def _samplers(self, stage):
        """``(sampler, reinforce)`` of ``stage``."""
        level = stage if self.config.mlas else 0
        return self.samplers[level], self.reinforces[level]

    def sample(self, batch_size, stage=None):
        """Architectures from the sampler of ``stage`` (default: the current one), extending
        the beam.

        Args:
          batch_size: how many architectures.
          stage: the stage whose sampler draws; None for the current stage.

        Returns:
          A `controller.SampleResult`.
        """
        stage = self.stage if stage is None else stage
        prev_archs, prev_hidden = self.beam.prefix(stage)
        return self._samplers(stage)[0].sample(batch_size, prev_archs=prev_archs,
                                               prev_hidden=prev_hidden)

    def score(self, archs, stage) -> list[float]:
        """Rewards of ``archs`` at ``stage``; a NaN/Inf one raises `lifecycle.Diverged`
        (the run then rolls back to its last checkpoint).

        Args:
          archs: architecture vectors (lists of ints).
          stage: the stage they are scored at.

        Returns:
          One float per architecture, in order.
        """
        values = []
        for arch in archs:
            with self.timer.phase("reward_scoring"):
                value = self.rewards(self, arch, stage)
            if not np.isfinite(value):
                raise lifecycle.Diverged(
                    f"the reward of architecture {ss.Arch.from_list(arch)} is {value}")
            values.append(value)
        return values

    def _reset_fired(self, stage) -> bool:
        """Check the loss windows; on a reset, log it and mark the shared GAN for
        re-initialisation at the end of the iteration."""
        stats = self.reset_monitor.due()
        if stats is None:
            return False
        self.log.reset(stage, stats)
        self.state.append("resets", {"iteration": self.state.iteration,
                                     "shared_step": self.state.step})
        self.reset_monitor.clear()
        self.state.set_pending_reset(True)
        return True

    def _controller_step(self, stage, sampler, reinforce) -> dict:
        """Sample, score, and (with a controller) one REINFORCE update; returns the record."""
        phase = self.timer.phase
        with phase("controller_sampling"):
            sample = self.sample(self.config.ctrl_sample_batch, stage)
            archs = sample.archs.numpy().tolist()
        rewards = self.score(archs, stage)
        record = {"stage": stage, "ctrl_step": self.state.step + 1,
                  "reward": float(np.mean(rewards)), "reward_min": float(np.min(rewards)),
                  "reward_max": float(np.max(rewards))}
        if reinforce is not None:
            with phase("controller_update"):
                stats = reinforce.update(sampler, sample, tf.constant(rewards, tf.float32))
                record.update({k: float(v) for k, v in stats.items()})
        with phase("controller_logging"):
            record["archs"] = search_log.arch_strings(archs)
            self.log.controller_step(record)
        self.state.count_step()
        return record

    def _growth_due(self) -> bool:
        """At the start of a grow step's iteration, unless already grown (a resume from the
        checkpoint written right after growing must not grow twice)."""
        it = self.state.iteration
        return (self.state.at_iteration_start and it > 0 and self.config.mlas
                and it in self.config.grow_steps_list() and not self.state.grown_at(it))

    def _record_stage(self, stage, archs, rewards):
        """Keep a stage's top-K in the history, and log it."""
        entries = [{"arch": a, "reward": r} for a, r in zip(archs, rewards)]
        self.state.append("stage_results", {"stage": stage, "iteration": self.state.iteration,
                                            "top_archs": entries})
        self.log.stage_top_k(stage, archs, rewards, self.images)

    def _result(self, final) -> dict:
        history = self.state.history()
        return {
            "top_archs": [{"arch": list(map(int, e["arch"])), "reward": e["reward"],
                           "arch_str": str(ss.Arch.from_list(e["arch"]))} for e in final],
            "stage_results": history.get("stage_results", []),
            "resets": history.get("resets", []),
            "stage_changes": history.get("stage_changes", []),
            "config": self.config.to_dict(),
        }

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, number=None) -> str:
        """Checkpoint everything; returns the path (timed as the "checkpoint" phase).

        Args:
          number: the number in the file name (None: the checkpoint manager's counter).
        """
        with self.timer.phase("checkpoint"):
            return super().save(number)


def with_epoch_images(config: SearchConfig) -> SearchConfig:
    """``config`` with ``epoch_images`` made concrete: ``0`` becomes the number of training
    images of ``--dataset`` (a folder's image count), so ``--shared_epochs`` counts passes
    over the user's data whatever its size.

    Args:
      config: the search's configuration.

    Returns:
      ``config`` itself when ``epoch_images`` is set (or ``shared_iters`` makes it
      irrelevant), else a copy with the count.

    Raises:
      data.DataError: the data set cannot be read.
    """
    if config.epoch_images or config.shared_iters:
        return config
    return config.replace(epoch_images=data.num_images(config.dataset, "train",
                                                       config.data_dir))


def check_config(model_dir, config: SearchConfig):
    """Write ``search_config.json``, or refuse a ``model_dir`` holding another search.

    Only the chief writes the file; other workers only compare.

    Args:
      model_dir: the search directory.
      config: the `config.SearchConfig` of this run.

    Raises:
      errors.RunUserError: the saved configuration is unreadable or differs in a
        `STRUCTURAL_KEYS` setting.
    """
    rundir.check_config(model_dir, rundir.SEARCH_CONFIG, config, STRUCTURAL_KEYS, "search",
                        write=distribute.is_chief())  # other workers only check


def load_search(model_dir: str, reward_fn=None, **overrides) -> Search:
    """A search directory restored to its last checkpoint, to inspect it.

    What a finished (or interrupted) search's supernet thinks of any architecture, not
    only of those its controller sampled: ``search.score(archs, stage)`` gives the
    rewards the search would have given them (an experiment correlates them with how the
    architectures train on their own). Nothing is trained or written.

    Args:
      model_dir: a directory ``autogan-search`` wrote (``search_config.json`` and
        ``checkpoints/``).
      reward_fn: ``(search, arch, stage, seed) -> float``; None builds the search's own
        reward (`make_reward_fn`) from its saved configuration and ``overrides``.
      **overrides: settings that differ from the saved ones for this inspection, e.g.
        ``reward_num_images=2000`` for less noisy rewards (structural settings such as the
        widths must not change: the checkpoint would not fit).

    Returns:
      The restored `Search` (``search.state.iteration`` says how far it got).

    Raises:
      errors.RunUserError: no search configuration or no checkpoint in ``model_dir``.
    """
    saved = rundir.read_config(model_dir, rundir.SEARCH_CONFIG, "search")
    changed = [k for k in overrides
               if k in STRUCTURAL_KEYS and overrides[k] != SearchConfig.saved_value(saved, k)]
    if changed:
        raise errors.RunUserError(f"load_search: {changed} cannot differ from the saved search's")
    config = with_epoch_images(SearchConfig.from_dict({**saved, **overrides}))
    if reward_fn is None:
        config = choose_reward(config, None if "reward" in overrides else model_dir)
        config.classifier = scorer.resolve_classifier(
            config.classifier, config.dataset, model_dir, config.data_dir,
            config.label_free_steps, config.resolution(config.num_cells - 1))
        reward_fn = rewards_lib.make_reward_fn(config, model_dir)
    search = Search(config, model_dir, reward_fn)
    if search.checkpoints.restore() is None:
        raise errors.RunUserError(f"--model_dir={model_dir} holds no search checkpoint yet")
    return search


def _saved_reward(model_dir: str | None):
    """``(reward, classifier)`` a search in ``model_dir`` saved, when it chose them (None: no
    saved search, or one saved before its reward was chosen)."""
    path = os.path.join(model_dir, rundir.SEARCH_CONFIG) if model_dir else None
    if not path or not os.path.exists(path):
        return None
    saved = rundir.read_config(model_dir, rundir.SEARCH_CONFIG, "search")
    if saved.get("reward", "auto") == "auto" or not saved.get("classifier"):
        return None
    return saved["reward"], saved["classifier"]


def choose_reward(config: SearchConfig, model_dir: str | None = None) -> SearchConfig:
    """``config`` with ``--reward=auto`` made concrete (`rewards.choose`), the choice and its
    reason logged; in seconds, before minutes of training a scorer: a ``--classifier=auto``
    that would learn one class only, or IS from a scorer of one class or from a label-free
    network, is refused here.

    A search resumed in ``model_dir`` keeps the reward and scorer it started with, whatever
    the folder's classes have become since.

    Raises:
      errors.UserError: see `rewards.check_is_scorer` and `scorer.check_auto_classifier`.
    """
    saved = _saved_reward(model_dir) if config.reward == "auto" else None
    if saved is not None:
        logging.info("reward: %s with --classifier=%s (--reward=auto: as when this search "
                     "started)", *saved)
        return config.replace(reward=saved[0], classifier=saved[1])
    if config.reward == "is" and label_free.kind_of(config.classifier) is not None:
        rewards_lib.check_is_scorer(0, config.classifier, label_free_network=True)
    if config.reward != "auto" and config.classifier != "auto":
        return config  # the scorer is checked when the reward is built (`make_reward_fn`)
    classes = rewards_lib.scorer_classes(config.classifier, config.dataset, config.data_dir)
    choice = rewards_lib.choose(config.reward, config.classifier, classes)
    if choice.reward == "is" and choice.classifier == "auto":
        rewards_lib.check_is_scorer(classes, f"--classifier=auto of --dataset="
                                             f"{config.dataset}", auto=True)
    if choice.classifier == "auto":
        scorer.check_auto_classifier(classes, config.dataset)
    if config.reward == "auto":
        logging.info("reward: %s with --classifier=%s (--reward=auto: %s)", choice.reward,
                     choice.classifier, choice.reason)
    return config.replace(reward=choice.reward, classifier=choice.classifier)


def run_search(config: SearchConfig, model_dir: str, reward_fn=None, progress=True,
               min_free_mb: float = 200.0, strategy=None, sync_bn: bool | None = None) -> dict:
    """Run (or resume) a search in ``model_dir``; returns the search result, or
    ``{"preempted": True, ...}`` when a SIGTERM/SIGINT stopped it (rerun to resume).

    ``strategy``/``sync_bn``: see `Search`; under a multi-worker strategy
    every worker calls this with the same arguments.

    Args:
      config: the `config.SearchConfig`.
      model_dir: the search directory (created; a directory holding a search resumes it).
      reward_fn: ``(search, arch, stage, seed) -> float``; None builds the paper's reward
        (`rewards.make_reward_fn`), which checks the classifier before any training.
      progress: show a progress bar.
      min_free_mb: refuse to start with less free disk space (MB) in ``model_dir``.
      strategy: the `tf.distribute` strategy (None: the default, one device).
      sync_bn: see `Search`.

    Returns:
      The result of `Search.finish` (or the preemption record), with ``chief``.

    Raises:
      errors.RunUserError: a ``model_dir`` of another search.
      errors.RunError: the search diverged more often than ``--max_nan_restores`` allows.
      errors.UserError: settings that do not fit, an unwritable directory or an unusable
        classifier or data set.
    """
    config = with_epoch_images(config)
    if reward_fn is None:
        config = choose_reward(config, model_dir)

    def build():
        reward = reward_fn or rewards_lib.make_reward_fn(config, model_dir, strategy)
        return Search(config, model_dir, reward, strategy=strategy, sync_bn=sync_bn,
                      progress=progress)

    return lifecycle.start(build, config, model_dir, check_config, min_free_mb)
