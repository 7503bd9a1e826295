"""What a search reports while it runs: JSON lines, TensorBoard, terminal lines, sample grids.

Every record goes to ``MODEL_DIR/search_log.jsonl`` with the search iteration
(`runlog.RunLog`); numbers also go to TensorBoard, on two step axes: shared-GAN
steps (generator iterations) and controller steps. Events (growth, resets,
roll-backs, the stage results) also print one line each (`describe_event`);
controller steps are summarised once per phase.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from absl import logging

from autogan_tf import phase_timer, rundir, runlog
from autogan_tf import search_space as ss
from autogan_tf.images import make_grid, save_png
from autogan_tf.search.state import CONTROLLER


def describe_event(record: dict, staged: bool = True) -> str:
    """One terminal line for a search event of the log (the JSONL keeps every field).

    ``stage_top_k``, ``grow`` and ``finished`` get their own wording; any other event is printed
    with its fields as ``key=value``.

    Args:
      record: the event's record, with at least ``event`` (and usually ``iteration``).
      staged: the search grows by stages (``--mlas``); a single-level one has only the
        last stage, which its lines do not name.

    Returns:
      The line, without a trailing newline.
    """
    event, it = record.get("event"), record.get("iteration")
    if event == "stage_top_k":
        best = ", ".join(f"{a} ({r:.2f})" for a, r in zip(record["archs"], record["rewards"]))
        where = f"stage {record['stage']} " if staged else ""
        return f"iteration {it}: {where}top {len(record['archs'])}: {best}"
    if event == "grow":
        return f"iteration {it}: growing to stage {record['stage']} (one more cell)"
    if event == "finished":
        return (f"search finished: best architecture {record['best_arch']} "
                f"(reward {record['best_reward']:.2f})")
    details = ", ".join(f"{k}={v}" for k, v in record.items()
                        if k not in ("event", "iteration", "time"))
    return f"iteration {it}: {event}" + (f" ({details})" if details else "")


def arch_strings(archs) -> list[str]:
    """Architecture vectors as the official space-separated strings.

    Args:
      archs: architecture vectors (lists of ints, each a whole number of cells).

    Returns:
      One string per vector, as `search_space.Arch.__str__` writes it.
    """
    return [str(ss.Arch.from_list(a)) for a in archs]


ARCH_PLOT = "arch.png"


# Rewards whose spread over a controller phase is at most this fraction of their mean do
# not tell architectures apart: a one-class scorer gives IS 1.0 to every architecture
# (spread 0), while the quick start's IS rewards spread 0.2-0.9 around 4-5.
MIN_REWARD_SPREAD = 0.01


def rewards_spread(steps: list) -> float | None:
    """Highest minus lowest reward of any architecture scored in ``steps`` (controller-step
    records with ``reward_min``, ``reward_max`` and ``archs``).

    None where the spread says nothing about telling architectures apart: fewer than two
    distinct architectures were scored (a controller that has settled on one, a phase
    resumed at its last step), or the records predate the fields.
    """
    if not steps or any("reward_min" not in r for r in steps):
        return None
    if len({a for r in steps for a in r.get("archs", ())}) < 2:
        return None
    return max(r["reward_max"] for r in steps) - min(r["reward_min"] for r in steps)


def separates(spread: float, rewards: list) -> bool:
    """Whether a phase's reward ``spread`` exceeds `MIN_REWARD_SPREAD` of the rewards' mean
    magnitude."""
    return spread > MIN_REWARD_SPREAD * abs(float(np.mean(rewards)))


class SearchLog:
    """The search's log, positioned by its `state.SearchState`.

    Args:
      model_dir: where ``search_log.jsonl``, TensorBoard logs and sample grids go.
      chief: only the chief writes (elsewhere every method only computes).
      state: the search's position (iteration, phase, step).
      config: the `config.SearchConfig` (steps per phase, logging interval).
    """

    def __init__(self, model_dir: str, chief: bool, state, config):
        self.model_dir = model_dir
        self.chief = chief
        self.state = state
        self.config = config
        self.run_log = runlog.RunLog(model_dir, name=rundir.SEARCH_LOG, is_chief=chief)

    def log(self, record: dict):
        """One JSON line, as is.

        Args:
          record: a JSON-serialisable dict.
        """
        self.run_log.log(record)

    def close(self):
        """Flush and close the JSON-lines file and the TensorBoard writer."""
        self.run_log.close()

    def event(self, record: dict):
        """An event: a JSON line with the iteration, and a terminal line.

        Args:
          record: the event's fields, with ``event`` naming it; ``iteration`` is added.
        """
        record = {"iteration": self.state.iteration, **record}
        self.run_log.log(record)
        logging.info("%s", describe_event(record, staged=self.config.mlas))

    def shared_step(self, out: dict, stage: int, progress: bool):
        """The losses of a shared-GAN step, every ``log_every`` steps and at the phase end.

        Args:
          out: the step's result, with ``d_losses`` (averaged here) and ``g_loss``.
          stage: the current stage, recorded with the losses.
          progress: also update the terminal progress bar.
        """
        c, step = self.config, self.state.step
        total = c.gen_iters_per_search_iter
        if step % c.log_every and step != total:
            return
        record = {"stage": stage, "shared_step": step,
                  "d_loss": float(tf.reduce_mean(out["d_losses"])), "g_loss": float(out["g_loss"])}
        self.run_log.log({"iteration": self.state.iteration, **record})
        self.run_log.scalars(self.shared_global_step(), {"shared/d_loss": record["d_loss"],
                                                         "shared/g_loss": record["g_loss"]})
        if progress:
            where = {"stage": stage} if c.mlas else {}
            self.run_log.progress(self.shared_global_step(), c.max_search_iters * total,
                                  **where, d_loss=record["d_loss"], g_loss=record["g_loss"])

    def phases(self, iteration: int, seconds: dict, calls: dict):
        """Where a finished search iteration's wall time went (`phase_timer.PhaseTimer.pop`).

        A JSON line (event ``phases``: ``seconds`` and ``calls`` per phase, each phase's
        ``fraction`` of the total) and TensorBoard scalars ``phases/<phase>_fraction`` and
        ``phases/total_seconds`` at the iteration; no terminal line.

        Args:
          iteration: the iteration that finished.
          seconds: ``{phase: seconds, ..., "other": ..., "total": ...}``.
          calls: ``{phase: times entered}``.
        """
        share = phase_timer.fractions(seconds)
        self.run_log.log({"iteration": iteration, "event": "phases", "seconds": seconds,
                          "calls": calls, "fraction": share})
        values = {f"phases/{k}_fraction": v for k, v in share.items()}
        values["phases/total_seconds"] = seconds["total"]
        self.run_log.scalars(iteration, values)

    def reset(self, stage: int, stats: dict):
        """A dynamic reset fired at the current shared step.

        Args:
          stage: the current stage.
          stats: the loss statistics that triggered it (`dynamic_reset.ResetMonitor.due`).
        """
        self.event({"event": "dynamic_reset", "stage": stage, "shared_step": self.state.step,
                    **stats})
        self.run_log.scalars(self.shared_global_step(), {"shared/reset": 1.0})

    def controller_step(self, record: dict):
        """A controller step's record (rewards, REINFORCE statistics, sampled archs).

        Args:
          record: the step's fields; its float values also go to TensorBoard under
            ``controller/``.
        """
        self.run_log.log({"iteration": self.state.iteration, **record})
        self.run_log.scalars(self.controller_global_step(),
                             {f"controller/{k}": v for k, v in record.items()
                              if isinstance(v, float)})

    def controller_summary(self, stage: int, steps: list):
        """One terminal line per controller phase: what a user watches converge.

        Args:
          stage: the current stage.
          steps: the phase's controller-step records (each with ``reward`` and ``archs``);
            nothing is printed when empty.
        """
        if not steps:
            return
        last = steps[-1]
        summary = f"reward {np.mean([r['reward'] for r in steps]):.3f}"
        for key in ("baseline", "entropy_mean"):
            if key in last:
                summary += f", {key.replace('_mean', '')} {last[key]:.3f}"
        where = f" (stage {stage})" if self.config.mlas else ""
        logging.info("iteration %d%s: controller %s; last sampled %s",
                     self.state.iteration, where, summary, last["archs"][0])
        spread = rewards_spread(steps)
        if spread is not None and not separates(spread, [r["reward"] for r in steps]):
            logging.warning(
                "iteration %d: the rewards of every architecture scored lie within %.4f of "
                "each other: they do not separate architectures, and the controller learns "
                "from noise (a scorer that sees one class? too few --reward_num_images?)",
                self.state.iteration, spread)
            self.run_log.log({"iteration": self.state.iteration,  # the warning is the line
                              "event": "rewards_do_not_separate", "stage": stage,
                              "spread": spread})

    def stage_top_k(self, stage: int, archs: list, rewards: list, images):
        """A stage's top-K, with a grid of 64 samples of the best (``images`` is the
        search's ``(arch, num, stage, seed) -> uint8`` sampler).

        Args:
          stage: the stage that finished.
          archs: its best architecture vectors, best first.
          rewards: their rewards, in the same order.
          images: the sampler drawing the grid of ``archs[0]`` (seeded by ``stage``).
        """
        self.event({"event": "stage_top_k", "stage": stage, "rewards": rewards,
                    "mean_reward": float(np.mean(rewards)), "archs": arch_strings(archs)})
        self.run_log.scalars(self.controller_global_step(),
                             {f"stage{stage}/mean_top_reward": float(np.mean(rewards))})
        grid = make_grid(images(archs[0], 64, stage, seed=stage).numpy(), 8)
        if self.chief:
            save_png(os.path.join(self.model_dir, rundir.SAMPLES, f"stage{stage}.png"), grid)
        self.run_log.image(self.controller_global_step(), f"samples/stage{stage}", grid)

    def found_architecture(self, arch) -> str:
        """The search's best architecture drawn as the paper's Figure 3 (`arch_plot`) into
        ``MODEL_DIR/arch.png`` and TensorBoard (``found_architecture``); returns the path.

        Args:
          arch: the architecture, anything `search_space.parse_arch` takes.

        Returns:
          The PNG's path (written by the chief only).
        """
        from autogan_tf import arch_plot

        c = self.config
        drawing = arch_plot.architecture_array(arch, bottom_width=c.bottom_width,
                                               gf_dim=c.gf_dim, latent_dim=c.latent_dim)[0]
        path = os.path.join(self.model_dir, ARCH_PLOT)
        if self.chief:
            save_png(path, drawing)
        self.run_log.image(self.controller_global_step(), "found_architecture", drawing)
        return path

    def shared_global_step(self) -> int:
        """Generator iterations of shared training since the search began."""
        return self.state.iteration * self.config.gen_iters_per_search_iter + self.state.step

    def controller_global_step(self) -> int:
        """Controller steps since the search began."""
        return self.state.iteration * max(1, self.config.ctrl_steps) + (
            self.state.step if self.state.phase == CONTROLLER else 0)
