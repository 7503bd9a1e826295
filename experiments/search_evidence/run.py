"""Does the search find better generators? The paper's section 4.3 on CIFAR-10, at a small scale.

Issue #18's experiment, on the CIFAR-10 JPEGs at 16x16 (bottom width 2: search stages
at 4, 8 and 16 px), every step with the package's own command lines:

1. a small CIFAR-10 classifier at 16 px scores everything (its test accuracy is in
   the results; IS/FID by it are not Inception numbers) and FID reference statistics
   of the 50,000 training images;
2. two searches with the same budget (shared-training iterations, controller steps,
   reward evaluations, top-K candidates): the RL controller (``--search=rl``) and
   random search with weight sharing (``--search=random``);
3. ``autogan-derive`` on each: its top-K trained briefly, the best by IS kept;
4. **proxy vs real**: ``--num_archs`` (14) architectures (both searches' top-K and uniformly
   random ones) scored on the RL search's final supernet (the reward the controller
   sees, averaged over ``PROXY_SEEDS`` noise seeds; also on the random search's
   supernet) and trained alone for the same budget (seed 0); Spearman's rank
   correlation with a bootstrap interval;
5. **RL vs random**: each search's derived architecture trained alone with seeds
   0 .. ``--train_seeds`` - 1, IS/FID of the EMA generator (5,000 samples), the difference
   with Welch's t-test and the seeds that would resolve it;
6. **controller learning curves** from the RL search's log (reward, baseline,
   entropy per search iteration) beside the random search's rewards.

    pip install -e '.[experiments]'        # matplotlib, for the plot
    python experiments/search_evidence/run.py --work_dir=/work/evidence

Every step is resumable: rerun the same command after a kill (finished commands are
skipped, killed ones resume from their checkpoints). ``--lanes=2`` runs two commands
at a time with one thread each. Output: ``WORK/results.json``, ``WORK/evidence.png``
and a Markdown table on stdout; ``--results``/``--plot`` also copy them (e.g. into
this directory and ``docs/``). ``--scale=smoke`` runs every step with tiny budgets
(minutes) to check the pipeline, not to measure anything.
"""

from __future__ import annotations

import argparse
import os
import random
import sys

import autogan_tf.cli  # noqa: F401 - TensorFlow's native log lines hidden, as in the commands

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # experiments/: the scripts' shared helpers
from common import (DATA, extract_cifar, log, read_json, read_jsonl,  # noqa: E402
                    run_command, run_parallel, write_json)
RESOLUTION = 16
PROXY_SEEDS = (11, 12, 13)
TRAIN_SEEDS = 8  # seeds of each search's derived architecture trained alone (--train_seeds)
NUM_ARCHS = 14

# What one search, one derive and one stand-alone training do; the searches differ only
# in --search. Every other setting is the package's default (the paper's).
SCALES = {
    "full": {
        "model": ["--bottom_width=2", "--gf_dim=32", "--df_dim=32", "--latent_dim=64",
                  "--g_batch_size=64", "--d_batch_size=32", "--n_critic=2",
                  "--g_lr=5e-4", "--d_lr=5e-4"],
        "search": ["--shared_iters=150", "--max_search_iters=30", "--grow_steps=10,20",
                   "--ctrl_steps=20", "--ctrl_sample_batch=4", "--num_candidates=8",
                   "--topk=4", "--reward_num_images=500", "--reset_window=200",
                   "--save_every=50", "--log_every=50"],
        "derive_iters": 1000,
        "train_iters": 2000,
        "eval_samples": 5000,
        "proxy_images": 1000,
        "classifier_epochs": 10,
    },
    "smoke": {
        "model": ["--bottom_width=2", "--gf_dim=8", "--df_dim=8", "--latent_dim=16",
                  "--g_batch_size=16", "--d_batch_size=16", "--n_critic=2",
                  "--g_lr=5e-4", "--d_lr=5e-4"],
        "search": ["--shared_iters=5", "--max_search_iters=6", "--grow_steps=2,4",
                   "--ctrl_steps=2", "--ctrl_sample_batch=2", "--num_candidates=3",
                   "--topk=2", "--reward_num_images=100", "--reset_window=10",
                   "--save_every=5", "--log_every=5"],
        "derive_iters": 20,
        "train_iters": 40,
        "eval_samples": 200,
        "proxy_images": 100,
        "classifier_epochs": 1,
    },
}


# -- statistics (tested in tests/test_experiments.py) ------------------------------------
def spearman_with_interval(x, y, num_boot=10_000, level=0.95, seed=0):
    """Spearman's rank correlation of ``x`` and ``y`` and a bootstrap interval.

    The interval resamples the (x, y) pairs with replacement (percentile method);
    resamples where either side is constant have no correlation and are skipped.

    Args:
      x, y: paired values, at least 3 pairs.
      num_boot: bootstrap resamples.
      level: the interval's coverage.
      seed: the resampling's seed.

    Returns:
      ``{"rho", "low", "high", "n"}``.
    """
    import numpy as np
    from scipy import stats

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) != len(y) or len(x) < 3:
        raise ValueError(f"need at least 3 pairs, got {len(x)} and {len(y)} values")
    rho = float(stats.spearmanr(x, y)[0])
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(num_boot):
        idx = rng.integers(0, len(x), len(x))
        if np.ptp(x[idx]) == 0 or np.ptp(y[idx]) == 0:
            continue
        boots.append(stats.spearmanr(x[idx], y[idx])[0])
    low, high = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return {"rho": rho, "low": float(low), "high": float(high), "n": int(len(x))}


def controller_curves(log_records):
    """Per search iteration: mean reward, last baseline, mean entropy of the controller steps.

    Args:
      log_records: the dicts of a search's ``search_log.jsonl``; controller steps are the
        records with ``ctrl_step`` (a resumed search may repeat a step: the last wins).

    Returns:
      A list of ``{"iteration", "stage", "reward", "baseline", "entropy"}`` sorted by
      iteration (``baseline``/``entropy`` are None for random search).
    """
    steps = {}
    for r in log_records:
        if "ctrl_step" in r:
            steps[(r["iteration"], r["ctrl_step"])] = r
    by_iter = {}
    for (it, _), r in sorted(steps.items()):
        by_iter.setdefault(it, []).append(r)
    curves = []
    for it, rs in sorted(by_iter.items()):
        entropies = [r["entropy_mean"] for r in rs if "entropy_mean" in r]
        curves.append({"iteration": it, "stage": rs[-1]["stage"],
                       "reward": sum(r["reward"] for r in rs) / len(rs),
                       "baseline": rs[-1].get("baseline"),
                       "entropy": sum(entropies) / len(entropies) if entropies else None})
    return curves


def compare_seeds(a, b, power=0.8, level=0.05):
    """Is ``a`` better than ``b``? Difference of means, Welch's t-test, and the seeds needed.

    Args:
      a, b: one score per seed for each side (at least 2 each).
      power, level: of the two-sided test the seed count is sized for.

    Returns:
      ``{"difference", "welch_p", "seeds_needed"}``: mean(a) - mean(b), the two-sided
      p-value of Welch's t-test, and the seeds per side that would detect this difference
      with ``power`` at ``level`` given the pooled spread (normal approximation:
      2 (z_{1-level/2} + z_{power})^2 s^2 / d^2, rounded up; None when d is 0).
    """
    import math

    import numpy as np
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least 2 seeds per side, got {len(a)} and {len(b)}")
    d = float(a.mean() - b.mean())
    p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    var = (a.var(ddof=1) + b.var(ddof=1)) / 2
    z = stats.norm.ppf(1 - level / 2) + stats.norm.ppf(power)
    needed = math.ceil(2 * z * z * var / d ** 2) if d else None
    return {"difference": d, "welch_p": p, "seeds_needed": needed}


def mean_std(values):
    import numpy as np

    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


# -- the steps ----------------------------------------------------------------------------
def prepare_scoring(args, work, root, scale):
    """The 16-px CIFAR-10 classifier (with its test accuracy) and the FID statistics."""
    classifier = os.path.join(work, "classifier.keras")
    if not os.path.exists(classifier + ".json"):
        run_command("classifier", ["autogan-train-classifier", f"--dataset=folder:{root}",
                                   f"--output={classifier}", f"--image_size={RESOLUTION}",
                                   f"--epochs={scale['classifier_epochs']}", "--seed=0"], work)
        # The command's summary line (test accuracy, seconds) is the last JSON line it printed.
        summary = [r for r in read_jsonl(os.path.join(work, "logs", "classifier.log"))
                   if "test_accuracy" in r][-1]
        write_json(classifier + ".json", summary)
    stats = os.path.join(work, "fid_stats_train.npz")
    if not os.path.exists(stats):
        run_command("fid_stats", ["autogan-fid-stats", f"--dataset=folder:{root}",
                                  f"--classifier={classifier}", f"--image_size={RESOLUTION}",
                                  f"--output={stats}"], work)
    info = read_json(classifier + ".json") or {}
    return classifier, stats, info


def threads_flag(args):
    return [f"--intra_op_threads={1 if args.lanes > 1 else 0}"]


def search_job(args, work, root, scale, classifier, kind):
    model_dir = os.path.join(work, f"search_{kind}")

    def job():
        if os.path.exists(os.path.join(model_dir, "search_result.json")):
            return
        run_command(f"search_{kind}", ["autogan-search", f"--model_dir={model_dir}",
                                       f"--dataset=folder:{root}", f"--search={kind}",
                                       f"--classifier={classifier}", "--seed=0",
                                       *scale["model"], *scale["search"], *threads_flag(args)],
                    work)
    return f"search_{kind}", job


def train_flags(root, scale, classifier, stats, iters):
    return [f"--dataset=folder:{root}", f"--classifier={classifier}", f"--fid_stats={stats}",
            *scale["model"], f"--max_iters={iters}", "--save_every=500", "--log_every=100",
            "--eval_every=0", f"--eval_num_samples={scale['eval_samples']}"]


def derive_job(args, work, root, scale, classifier, stats, kind):
    model_dir = os.path.join(work, f"derive_{kind}")

    def job():
        if os.path.exists(os.path.join(model_dir, "derive_result.json")):
            return
        run_command(f"derive_{kind}", [
            "autogan-derive", f"--search_result={work}/search_{kind}/search_result.json",
            f"--model_dir={model_dir}", "--seed=0", *threads_flag(args),
            *train_flags(root, scale, classifier, stats, scale["derive_iters"])], work)
    return f"derive_{kind}", job


def run_name(arch, seed):
    return arch.replace(" ", "") + f"_s{seed}"


def train_job(args, work, root, scale, classifier, stats, arch, seed):
    """Train ``arch`` alone with ``seed`` and evaluate its EMA generator (one lane)."""
    model_dir = os.path.join(work, "train", run_name(arch, seed))
    result = os.path.join(model_dir, "eval_final.json")

    def job():
        if os.path.exists(result):
            return
        run_command(f"train_{run_name(arch, seed)}", [
            "autogan-train", f"--model_dir={model_dir}", f"--arch={arch}", f"--seed={seed}",
            *threads_flag(args), *train_flags(root, scale, classifier, stats,
                                               scale["train_iters"])], work)
        run_command(f"eval_{run_name(arch, seed)}", [
            "autogan-evaluate", f"--model_dir={model_dir}", f"--output={result}",
            f"--num_samples={scale['eval_samples']}", *threads_flag(args)], work)
    return run_name(arch, seed), job


def choose_archs(work, num_archs, seed=0):
    """Both searches' final top-K, then uniformly random architectures up to ``num_archs``.

    Returns:
      ``[{"arch": str, "source": "rl"|"random_search"|"uniform"}]``, no duplicates.
    """

    chosen, seen = [], set()
    for kind, source in (("rl", "rl"), ("random", "random_search")):
        result = read_json(os.path.join(work, f"search_{kind}", "search_result.json"))
        for entry in result["top_archs"]:
            if entry["arch_str"] not in seen:
                seen.add(entry["arch_str"])
                chosen.append({"arch": entry["arch_str"], "source": source})
    return fill_uniform(chosen, num_archs, seed)


def fill_uniform(chosen, num_archs, seed=0):
    """``chosen`` (``[{"arch", "source"}]``) topped up to ``num_archs`` with distinct
    uniformly random 3-cell architectures (``source`` "uniform"), drawn from ``seed``."""
    from autogan_tf import search_space as ss

    seen = {c["arch"] for c in chosen}
    rng = random.Random(seed)
    while len(chosen) < num_archs:
        arch = str(ss.sample_arch(3, rng))
        if arch not in seen:
            seen.add(arch)
            chosen.append({"arch": arch, "source": "uniform"})
    return chosen


def proxy_rewards(work, archs, scale, classifier):
    """Each architecture's reward on each search's final supernet (cached in ``WORK``).

    The mean over `PROXY_SEEDS` of the IS of ``proxy_images`` samples at the last stage:
    what the search's controller would have been told about it.
    """
    path = os.path.join(work, "proxy.json")
    cached = read_json(path, {})
    todo = [(kind, a) for kind in ("rl", "random") for a in archs
            if f"{kind}/{a}" not in cached]
    if not todo:
        return cached
    from autogan_tf import api

    for kind in ("rl", "random"):
        mine = [a for k, a in todo if k == kind]
        if not mine:
            continue
        log(f"proxy rewards of {len(mine)} architectures on the {kind} search's supernet")
        means = api.supernet_rewards(os.path.join(work, f"search_{kind}"), mine,
                                     seeds=PROXY_SEEDS, classifier=classifier,
                                     reward_num_images=scale["proxy_images"])
        for arch, mean in zip(mine, means):
            cached[f"{kind}/{arch}"] = {"mean": mean}
        write_json(path, cached)
    return cached


def learning_curves(work):
    out = {}
    for kind in ("rl", "random"):
        path = os.path.join(work, f"search_{kind}", "search_log.jsonl")
        out[kind] = controller_curves(read_jsonl(path)) if os.path.exists(path) else []
    return out


def stand_alone(work, arch, seed):
    return read_json(os.path.join(work, "train", run_name(arch, seed), "eval_final.json"))


def analyse(work, archs, proxy, info, scale, train_seeds=TRAIN_SEEDS):
    """The results: proxy vs real correlation, RL vs random, the learning curves."""
    rows = []
    for entry in archs:
        real = stand_alone(work, entry["arch"], 0)
        rows.append({**entry, "proxy_rl": proxy[f"rl/{entry['arch']}"]["mean"],
                     "proxy_random": proxy[f"random/{entry['arch']}"]["mean"],
                     "is": real["is_mean"], "fid": real["fid"]})
    correlation = {}
    for supernet in ("rl", "random"):
        xs = [r[f"proxy_{supernet}"] for r in rows]
        correlation[f"{supernet}_supernet_vs_is"] = spearman_with_interval(xs, [r["is"] for r in rows])
        correlation[f"{supernet}_supernet_vs_neg_fid"] = spearman_with_interval(
            xs, [-r["fid"] for r in rows])
    comparison = {}
    for kind in ("rl", "random"):
        derived = read_json(os.path.join(work, f"derive_{kind}", "derive_result.json"))
        arch = derived["best"]["arch"]
        runs = [stand_alone(work, arch, s) for s in range(train_seeds)]
        is_mean, is_sd = mean_std([r["is_mean"] for r in runs])
        fid_mean, fid_sd = mean_std([r["fid"] for r in runs])
        comparison[kind] = {"arch": arch, "derive": derived["archs"],
                            "is": [r["is_mean"] for r in runs], "fid": [r["fid"] for r in runs],
                            "is_mean": is_mean, "is_sd": is_sd, "fid_mean": fid_mean,
                            "fid_sd": fid_sd}
    difference = {"is": compare_seeds(comparison["rl"]["is"], comparison["random"]["is"]),
                  "fid": compare_seeds(comparison["rl"]["fid"], comparison["random"]["fid"])}
    return {"settings": {"resolution": RESOLUTION, **{k: v for k, v in scale.items()},
                         "proxy_seeds": list(PROXY_SEEDS),
                         "train_seeds": list(range(train_seeds))},
            "classifier": info, "architectures": rows, "correlation": correlation,
            "rl_vs_random": comparison, "rl_minus_random": difference,
            "curves": learning_curves(work)}


def markdown(results):
    c, info = results["correlation"], results["classifier"]
    acc = info.get("test_accuracy")
    lines = [f"Scores by our 16-px CIFAR-10 classifier ({acc:.1%} test accuracy), not Inception "
             "numbers." if acc is not None else "Scores by our 16-px CIFAR-10 classifier.", "",
             "| proxy (supernet) | real | Spearman rho | 95 % bootstrap interval | archs |",
             "|---|---|---|---|---|"]
    for key, label in (("rl_supernet_vs_is", "RL search's | IS"),
                       ("rl_supernet_vs_neg_fid", "RL search's | -FID"),
                       ("random_supernet_vs_is", "random search's | IS"),
                       ("random_supernet_vs_neg_fid", "random search's | -FID")):
        r = c[key]
        lines.append(f"| {label} | {r['rho']:.3f} | [{r['low']:.2f}, {r['high']:.2f}] | {r['n']} |")
    lines += ["", "| search | derived architecture | IS (seeds) | FID (seeds) |", "|---|---|---|---|"]
    for kind, row in results["rl_vs_random"].items():
        lines.append(f"| {kind} | `{row['arch']}` | {row['is_mean']:.2f} +- {row['is_sd']:.2f} "
                     f"({' / '.join(f'{v:.2f}' for v in row['is'])}) | {row['fid_mean']:.2f} +- "
                     f"{row['fid_sd']:.2f} ({' / '.join(f'{v:.2f}' for v in row['fid'])}) |")
    if "rl_minus_random" in results:
        lines += ["", "| RL - random | difference of means | Welch p | seeds per side for 80 % "
                  "power |", "|---|---|---|---|"]
        for key, label in (("is", "IS"), ("fid", "FID")):
            r = results["rl_minus_random"][key]
            lines.append(f"| {label} | {r['difference']:+.2f} | {r['welch_p']:.2f} | "
                         f"{r['seeds_needed']} |")
    return "\n".join(lines)


def _mark_stages(ax, curve):
    """Dotted vertical lines where the search grows a cell (rewards restart lower there)."""
    for before, after in zip(curve, curve[1:]):
        if after["stage"] != before["stage"]:
            ax.axvline(after["iteration"] - 0.5, color="grey", ls=":", lw=1)


def plot(results, path):
    """Four panels: controller curves, baseline/entropy, proxy vs real, RL vs random."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    curves = results["curves"]
    ax = axes[0, 0]
    for kind, style in (("rl", "-o"), ("random", "--s")):
        its = [p["iteration"] for p in curves[kind]]
        ax.plot(its, [p["reward"] for p in curves[kind]], style, ms=3, label=f"{kind} search")
    ax.set(title="mean reward per search iteration", xlabel="search iteration",
           ylabel="reward (IS, our classifier)")
    _mark_stages(axes[0, 0], curves["rl"])
    _mark_stages(axes[0, 1], curves["rl"])
    ax.legend()
    ax = axes[0, 1]
    its = [p["iteration"] for p in curves["rl"]]
    ax.plot(its, [p["baseline"] for p in curves["rl"]], "-", label="baseline (end of iteration)")
    ax.set(title="RL controller", xlabel="search iteration", ylabel="baseline")
    twin = ax.twinx()
    twin.plot(its, [p["entropy"] for p in curves["rl"]], "r:", label="entropy")
    twin.set_ylabel("mean entropy per decision", color="r")
    ax.legend(loc="upper left")
    ax = axes[1, 0]
    rows = results["architectures"]
    for source, marker in (("rl", "o"), ("random_search", "s"), ("uniform", "x")):
        pts = [r for r in rows if r["source"] == source]
        ax.scatter([r["proxy_rl"] for r in pts], [r["is"] for r in pts], marker=marker,
                   label=source)
    rho = results["correlation"]["rl_supernet_vs_is"]
    ax.set(title=f"proxy vs real: Spearman {rho['rho']:.2f} [{rho['low']:.2f}, {rho['high']:.2f}]",
           xlabel="reward on the RL search's supernet", ylabel="IS trained alone")
    ax.legend()
    ax = axes[1, 1]
    for i, (kind, row) in enumerate(results["rl_vs_random"].items()):
        ax.bar(i, row["is_mean"], yerr=row["is_sd"], capsize=6, alpha=0.6)
        ax.scatter([i] * len(row["is"]), row["is"], color="k", zorder=3)
    ax.set_xticks(range(len(results["rl_vs_random"])),
                  [f"{k}\n{r['arch']}" for k, r in results["rl_vs_random"].items()], fontsize=7)
    values = [v for row in results["rl_vs_random"].values() for v in row["is"]]
    ax.set_ylim(min(values) - 0.3, max(values) + 0.2)  # the seeds' spread, not the bars
    ax.set(title="derived architecture trained alone (seeds)", ylabel="IS")
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=110)
    os.replace(path + ".tmp.png", path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work_dir", required=True)
    p.add_argument("--data", default=DATA, help="the CIFAR-10 JPEG tarball")
    p.add_argument("--scale", default="full", choices=sorted(SCALES))
    p.add_argument("--lanes", type=int, default=2, help="commands run at a time")
    p.add_argument("--num_archs", type=int, default=NUM_ARCHS,
                   help="architectures of the proxy-vs-real correlation (at least 12)")
    p.add_argument("--train_seeds", type=int, default=TRAIN_SEEDS,
                   help="seeds of each search's derived architecture trained alone (at least 2)")
    p.add_argument("--results", default=None, help="also write the results JSON here")
    p.add_argument("--plot", default=None, help="also write the plot here")
    args = p.parse_args(argv)
    if args.num_archs < 3:
        p.error("--num_archs must be at least 3")
    if args.train_seeds < 2:
        p.error("--train_seeds must be at least 2")
    if not os.path.exists(args.data):
        p.error(f"--data={args.data}: no such file (the CIFAR-10 JPEG tarball)")
    scale = SCALES[args.scale]
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    root = extract_cifar(work, args.data)
    classifier, stats, info = prepare_scoring(args, work, root, scale)
    run_parallel([search_job(args, work, root, scale, classifier, k) for k in ("rl", "random")],
                 args.lanes)
    run_parallel([derive_job(args, work, root, scale, classifier, stats, k)
                  for k in ("rl", "random")], args.lanes)
    archs = choose_archs(work, args.num_archs)
    write_json(os.path.join(work, "archs.json"), archs)
    proxy = proxy_rewards(work, [a["arch"] for a in archs], scale, classifier)
    runs = {(a["arch"], 0) for a in archs}
    for kind in ("rl", "random"):
        best = read_json(os.path.join(work, f"derive_{kind}", "derive_result.json"))["best"]
        runs |= {(best["arch"], s) for s in range(args.train_seeds)}
    run_parallel([train_job(args, work, root, scale, classifier, stats, a, s)
                  for a, s in sorted(runs, key=lambda r: (r[1], r[0]))], args.lanes)
    results = analyse(work, archs, proxy, info, scale, args.train_seeds)
    for out in filter(None, [os.path.join(work, "results.json"), args.results]):
        write_json(out, results)
    for out in filter(None, [os.path.join(work, "evidence.png"), args.plot]):
        plot(results, out)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
