"""Where a search iteration's time goes, and what the paper's whole search costs here.

    python bench/bench_search_phases.py --output=bench_search_phases.json
    python bench/bench_search_phases.py --precision=bfloat16
    python bench/bench_search_phases.py --quick          # a smoke run of a minute or two

Runs a short real search (`search.run_search`) in the paper's configuration
(``flags/search_cifar10.cfg``: supernet G 128 / D 64, batch 128/64, n_critic 5,
IS reward of 5,000 images) but with few steps: ``--iters_per_stage`` search
iterations at each of the three stages, each ``--shared_iters`` generator
iterations of shared training and ``--ctrl_steps`` controller steps. Every
iteration logs its wall time by phase (`autogan_tf.phase_timer`: shared training,
architecture sampling, reward images, reward scoring, controller update, top-K,
checkpoints, logging, dynamic-reset checks, ``other``), with how often each phase ran.

From the last (steady, already compiled) iteration of each stage, each phase's cost
per call is scaled to the paper's counts: shared-loop phases by the paper's
generator iterations per search iteration (2,346), controller-loop phases by its
controller steps (30), checkpoints by the saves of a paper iteration. That gives

* ``paper_iteration``: one paper search iteration at each stage, seconds and
  fraction per phase, and ``not_shared_training_fraction`` (everything but the
  shared training: what the search spends on anything else);
* ``full_search``: the 65 iterations (stages switching at 15 and 35), the top-K at
  each growth and at the end, plus each stage's first-iteration (compile) overhead,
  in hours. Dynamic resets would shorten shared phases: this is the cost without any.
  The first-iteration overhead is the first shared phase's extra time over the
  steady one at the same stage (compiling the stage's supernet step).

The reward's classifier is the committed CIFAR-10 scoring classifier of
``experiments/side_by_side/scorer/`` (``--classifier``; the Inception graph cannot be
downloaded here), so the figures hold for "a small classifier reward". The data is
the built-in ``shapes`` set unless ``--dataset`` names another (``folder:PATH``):
the input pipeline is measured by bench_input.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import peak  # noqa: E402

SCORER = os.path.join(ROOT, "experiments", "side_by_side", "scorer", "classifier.keras")
SHARED_LOOP = ("arch_sampling", "shared_training", "dynamic_reset", "shared_logging")
CONTROLLER_LOOP = ("controller_sampling", "reward_scoring", "sample_images",
                   "controller_update", "controller_logging")
GROWTH_ONLY = ("top_k", "growth_logging")


def scale_iteration(seconds: dict, calls: dict, measured: dict, paper: dict) -> dict:
    """One paper iteration's seconds per phase, from a measured steady iteration.

    Args:
      seconds: the measured iteration's seconds per phase (a ``phases`` log record's).
      calls: how often each phase ran in it.
      measured: ``shared_iters`` and ``ctrl_calls`` (controller steps x samples per step)
        of the measured iteration (its saves are ``calls["checkpoint"]``).
      paper: the same counts for a paper iteration, and its ``saves``.

    Returns:
      ``{phase: seconds}`` plus ``total``: shared-loop phases scaled by the ratio of
      generator iterations, controller-loop phases by the ratio of controller calls,
      ``checkpoint`` by the ratio of saves, ``other`` kept; growth-only phases left out
      (`growth_seconds` adds them where the paper grows).
    """
    ratio = {name: paper["shared_iters"] / measured["shared_iters"] for name in SHARED_LOOP}
    ratio.update({name: paper["ctrl_calls"] / measured["ctrl_calls"] for name in CONTROLLER_LOOP})
    ratio["checkpoint"] = paper["saves"] / max(calls.get("checkpoint", 1), 1)
    ratio["other"] = 1.0
    unknown = set(seconds) - set(ratio) - set(GROWTH_ONLY) - {"total"}
    if unknown:
        raise ValueError(f"phases with no scaling rule: {sorted(unknown)}")
    out = {name: seconds[name] * ratio[name] for name in seconds
           if name in ratio}
    out["total"] = sum(out.values())
    return out


def growth_seconds(per_reward: float, growth_phases: dict, num_candidates: int) -> float:
    """A top-K at a growth (or the end): the candidates' rewards and the top-K's own work.

    Args:
      per_reward: seconds of one reward at the finishing stage (images and scoring).
      growth_phases: the measured growth's own ``top_k`` and ``growth_logging`` seconds.
      num_candidates: architectures scored (the paper: 10).
    """
    return num_candidates * per_reward + sum(growth_phases.get(k, 0.0) for k in GROWTH_ONLY)


def saves_per_iteration(shared_iters: int, save_every: int) -> int:
    """Checkpoints a search iteration writes: every ``save_every`` shared steps, after the
    shared phase and after the controller phase."""
    return (shared_iters // save_every if save_every else 0) + 2


def stage_of(iteration: int, grow_steps: list[int]) -> int:
    """The stage a search iteration trains (the paper: 0 before 15, 1 before 35, then 2)."""
    return sum(1 for step in grow_steps if iteration >= step)


def full_search_seconds(per_stage: dict, grow_steps: list[int], max_iters: int,
                        growth: dict, final_top_k: float, first_overhead: dict) -> dict:
    """The paper's whole search from per-stage iteration costs.

    Args:
      per_stage: stage -> seconds of one paper iteration there.
      grow_steps: iterations at which a stage begins.
      max_iters: search iterations (65).
      growth: stage -> seconds of the top-K that ends it (at the growth into the next).
      final_top_k: seconds of the last stage's top-K (the search's result).
      first_overhead: stage -> extra seconds of its first iteration (compiling its step).

    Returns:
      ``{"seconds", "hours", "iterations_per_stage"}``.
    """
    counts = {}
    for i in range(max_iters):
        counts[stage_of(i, grow_steps)] = counts.get(stage_of(i, grow_steps), 0) + 1
    total = sum(n * per_stage[s] + first_overhead.get(s, 0.0) for s, n in counts.items())
    total += sum(growth[s] for s in range(len(grow_steps))) + final_top_k
    return {"seconds": total, "hours": total / 3600,
            "iterations_per_stage": {str(s): n for s, n in sorted(counts.items())}}


def paper_config() -> dict:
    from autogan_tf import config, flagfiles

    return flagfiles.read("search_cifar10", config.SearchConfig)


def run_short_search(args, model_dir) -> list:
    """The measured search: returns its `SearchConfig` and its ``phases`` log records, in
    iteration order."""
    from autogan_tf.search import loop as search
    from autogan_tf import config as config_lib

    values = paper_config()
    values.update(dataset=args.dataset, classifier=args.classifier, shared_epochs=0,
                  shared_iters=args.shared_iters, ctrl_steps=args.ctrl_steps,
                  max_search_iters=3 * args.iters_per_stage,
                  grow_steps=f"{args.iters_per_stage},{2 * args.iters_per_stage}",
                  num_candidates=args.num_candidates, topk=min(args.num_candidates, 5),
                  precision=args.precision, seed=args.seed)
    if args.quick:
        values.update(gf_dim=8, df_dim=8, latent_dim=8, g_batch_size=8, d_batch_size=8,
                      reward_num_images=100, eval_batch_size=50)
    config = config_lib.SearchConfig(**values)
    search.run_search(config, model_dir, progress=False)
    with open(os.path.join(model_dir, "search_log.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    return config, [r for r in records if r.get("event") == "phases"]


def analyse(config, phases) -> dict:
    """Per-stage unit costs of the measured run, scaled to the paper's search.

    Args:
      config: the measured search's `SearchConfig`.
      phases: its ``phases`` log records.

    Returns:
      The figures described in the module docstring.
    """
    from autogan_tf import config as config_lib
    from autogan_tf import phase_timer

    paper_cfg = config_lib.SearchConfig(**paper_config())
    paper_shared = paper_cfg.gen_iters_per_search_iter
    paper_counts = {"shared_iters": paper_shared,
                    "ctrl_calls": paper_cfg.ctrl_steps * paper_cfg.ctrl_sample_batch,
                    "saves": saves_per_iteration(paper_shared, paper_cfg.save_every)}
    measured = {"shared_iters": config.shared_iters,
                "ctrl_calls": config.ctrl_steps * config.ctrl_sample_batch}
    grows = config.grow_steps_list()
    by_stage = {}
    for r in phases:
        by_stage.setdefault(stage_of(r["iteration"], grows), []).append(r)
    per_stage, growth, first_overhead, stages_out = {}, {}, {}, []
    for stage, records in sorted(by_stage.items()):
        steady = records[-1]
        seconds = dict(steady["seconds"])
        rewards_calls = steady["calls"].get("reward_scoring", 0)
        per_reward = ((seconds.get("reward_scoring", 0.0) + seconds.get("sample_images", 0.0))
                      / max(rewards_calls, 1))
        scaled = scale_iteration(seconds, steady["calls"], measured, paper_counts)
        per_stage[stage] = scaled["total"]
        share = phase_timer.fractions(scaled)
        # A top-K at this stage's end: overwritten below where a growth was measured.
        growth[stage] = growth_seconds(per_reward, {}, paper_cfg.num_candidates)
        # Compiling the stage's supernet step: the first iteration's extra shared training.
        first_overhead[stage] = max(0.0, records[0]["seconds"]["shared_training"]
                                    - seconds["shared_training"])
        stages_out.append({
            "stage": stage, "image_size": config.resolution(stage),
            "measured_iterations": [r["seconds"] for r in records],
            "measured_calls": steady["calls"],
            "seconds_per_call": {k: seconds[k] / steady["calls"][k]
                                 for k in steady["calls"] if steady["calls"][k]},
            "seconds_per_reward": per_reward,
            "first_iteration_overhead_seconds": first_overhead[stage],
            "paper_iteration": {"seconds": scaled, "fraction": share,
                                "not_shared_training_fraction": 1.0 - share.get(
                                    "shared_training", 0.0)},
        })
    # The growths: the measured growth iterations' own top-K work, the rewards per call.
    for r in phases:
        if "top_k" in r["seconds"]:
            finished = stage_of(r["iteration"], grows) - 1
            own = {k: r["seconds"].get(k, 0.0) for k in GROWTH_ONLY}
            per_reward = stages_out[finished]["seconds_per_reward"]
            growth[finished] = growth_seconds(per_reward, own, paper_cfg.num_candidates)
    last = max(per_stage)
    full = full_search_seconds(per_stage, paper_cfg.grow_steps_list(), paper_cfg.max_search_iters,
                               growth, growth[last], first_overhead)
    return {"paper_counts_per_iteration": paper_counts, "measured_counts_per_iteration":
            measured, "stages": stages_out, "growth_seconds": growth, "full_search": full}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared_iters", type=int, default=4,
                   help="Generator iterations of shared training per measured iteration.")
    p.add_argument("--ctrl_steps", type=int, default=3,
                   help="Controller steps per measured iteration.")
    p.add_argument("--iters_per_stage", type=int, default=2,
                   help="Measured search iterations per stage (the last one is timed).")
    p.add_argument("--num_candidates", type=int, default=3,
                   help="Top-K candidates scored at each measured growth.")
    p.add_argument("--classifier", default=SCORER)
    p.add_argument("--dataset", default="shapes")
    p.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work_dir", default=None, help="Keep the measured search here.")
    p.add_argument("--quick", action="store_true",
                   help="Smoke mode: widths 8, batches 8, 100 reward images.")
    p.add_argument("--output", default=None, help="Write the JSON here instead of stdout.")
    peak.add_thread_flags(p)
    args = p.parse_args(argv)
    for flag in ("shared_iters", "ctrl_steps", "num_candidates"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    if args.iters_per_stage < 2:
        p.error("--iters_per_stage must be at least 2 (the first one compiles)")
    if not os.path.exists(args.classifier):
        p.error(f"--classifier={args.classifier}: no such file")
    return args


def main(argv=None):
    args = parse_args(argv)
    peak.quiet_tensorflow()
    import autogan_tf.cli  # noqa: F401 - TensorFlow's native log lines hidden

    peak.configure_threads(args.inter_op_threads, args.intra_op_threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.work_dir or os.path.join(tmp, "search")
        config, phases = run_short_search(args, model_dir)
    result = {"benchmark": "search iteration by phase, scaled to the paper's search",
              "machine": peak.machine(), "load_average": peak.load_average(),
              "config": {k: getattr(args, k) for k in (
                  "shared_iters", "ctrl_steps", "iters_per_stage", "num_candidates",
                  "classifier", "dataset", "precision", "quick")},
              "measured_run_seconds": round(time.perf_counter() - start, 1)}
    result.update(analyse(config, phases))
    peak.emit(result, args.output)
    return result


if __name__ == "__main__":
    main()
