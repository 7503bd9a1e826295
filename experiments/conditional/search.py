"""A class-conditional search at the search-evidence scale, and which reward it should use
(issue 33's third piece of evidence).

On the CIFAR-10 JPEGs at 16 px, with the search-evidence experiment's settings
(``experiments/search_evidence``: bottom width 2, G / D width 32, 30 search iterations of
150 shared iterations, RL controller, seed 0), every step with the package's commands:

1. the 16-px CIFAR-10 classifier and FID statistics of the 50,000 training images (as in
   the search-evidence experiment; its test accuracy is recorded);
2. two conditional searches that differ only in the reward: ``--reward=is`` (IS of
   class-balanced samples) and ``--reward=class_accuracy`` (the share of samples the
   classifier sees as the class asked for);
3. ``autogan-derive`` on each (it trains conditionally because the search was);
4. stand-alone training, seeds 0 .. ``--train_seeds`` - 1, of four arms:
   - ``cond_is``: the IS search's architecture, conditional;
   - ``cond_accuracy``: the class-accuracy search's architecture, conditional;
   - ``uncond_arch_cond``: the unconditional RL search's architecture (from the
     search-evidence experiment), trained conditionally: does searching with the class
     find a better conditional generator than searching without it?
   - ``uncond``: that architecture trained unconditionally (the baseline);
5. IS, FID and the requested-class accuracy of 5,000 EMA samples of each
   (``autogan-evaluate``), the arms' differences with Welch's t-test.

    python experiments/conditional/search.py --work_dir=/tmp/cond_search

Resumable: rerun after a kill (finished commands are skipped, killed ones resume from
their checkpoints). ``--lanes=2`` runs two commands at a time with one thread each.
Writes ``--results`` (``search.json`` beside this script), ``--plot`` and a Markdown table
on stdout. ``--scale=smoke`` checks the pipeline in minutes.
"""

from __future__ import annotations

import argparse
import os
import sys

import autogan_tf.cli  # noqa: F401 - TensorFlow's native log lines hidden, as in the commands

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))  # experiments/: the scripts' shared helpers
import common  # noqa: E402

ev = common.load_script("search_evidence/run.py")  # its settings, steps and statistics
REWARDS = {"cond_is": "is", "cond_accuracy": "class_accuracy"}
# The unconditional RL search's derived architecture (experiments/search_evidence).
UNCONDITIONAL_ARCH = "0 1 1 1 0 2 1 1 0 0 1 1 1 2"
ARMS = ("cond_is", "cond_accuracy", "uncond_arch_cond", "uncond")
TRAIN_SEEDS = 4



def search_job(args, work, root, scale, classifier, arm):
    model_dir = os.path.join(work, f"search_{arm}")

    def job():
        if os.path.exists(os.path.join(model_dir, "search_result.json")):
            return
        common.run_command(f"search_{arm}", [
            "autogan-search", f"--model_dir={model_dir}", f"--dataset=folder:{root}",
            "--search=rl", "--conditional", f"--reward={REWARDS[arm]}",
            f"--classifier={classifier}", "--seed=0", *scale["model"], *scale["search"],
            *ev.threads_flag(args)], work)
    return f"search_{arm}", job


def derive_job(args, work, root, scale, classifier, stats, arm):
    model_dir = os.path.join(work, f"derive_{arm}")

    def job():
        if os.path.exists(os.path.join(model_dir, "derive_result.json")):
            return
        common.run_command(f"derive_{arm}", [
            "autogan-derive", f"--search_result={work}/search_{arm}/search_result.json",
            f"--model_dir={model_dir}", "--seed=0", *ev.threads_flag(args),
            *ev.train_flags(root, scale, classifier, stats, scale["derive_iters"])], work)
    return f"derive_{arm}", job


def arm_arch(work, arm):
    if arm.startswith("uncond"):
        return UNCONDITIONAL_ARCH
    derived = common.read_json(os.path.join(work, f"derive_{arm}", "derive_result.json"))
    return derived["best"]["arch"]


def train_dir(work, arm, seed):
    return os.path.join(work, "train", f"{arm}_s{seed}")


def train_job(args, work, root, scale, classifier, stats, arm, seed):
    """Train ``arm``'s architecture alone with ``seed`` and evaluate its EMA generator."""
    model_dir = train_dir(work, arm, seed)
    result = os.path.join(model_dir, "eval_final.json")
    conditional = ["--noconditional"] if arm == "uncond" else ["--conditional"]

    def job():
        if os.path.exists(result):
            return
        name = f"{arm}_s{seed}"
        common.run_command(f"train_{name}", [
            "autogan-train", f"--model_dir={model_dir}", f"--arch={arm_arch(work, arm)}",
            f"--seed={seed}", *conditional, *ev.threads_flag(args),
            *ev.train_flags(root, scale, classifier, stats, scale["train_iters"])], work)
        common.run_command(f"eval_{name}", [
            "autogan-evaluate", f"--model_dir={model_dir}", f"--output={result}",
            f"--num_samples={scale['eval_samples']}", *ev.threads_flag(args)], work)
    return f"{arm}_s{seed}", job


def summarise(arm, arch, runs) -> dict:
    """One arm's scores over its seeds: the lists and their mean and standard deviation."""
    row = {"arch": arch}
    for metric in ("is_mean", "fid", "class_accuracy"):
        values = [r.get(metric) for r in runs]
        if any(v is None for v in values):
            continue
        mean, sd = ev.mean_std(values)
        row.update({metric: values, f"{metric}_avg": mean, f"{metric}_sd": sd})
    return row


def analyse(work, info, scale, train_seeds):
    arms = {}
    for arm in ARMS:
        runs = [common.read_json(os.path.join(train_dir(work, arm, s), "eval_final.json"))
                for s in range(train_seeds)]
        arms[arm] = summarise(arm, arm_arch(work, arm), runs)
    differences = {}
    for a, b in (("cond_accuracy", "cond_is"), ("cond_is", "uncond_arch_cond"),
                 ("cond_accuracy", "uncond_arch_cond"), ("uncond_arch_cond", "uncond")):
        differences[f"{a} - {b}"] = {
            metric: ev.compare_seeds(arms[a][metric], arms[b][metric])
            for metric in ("is_mean", "fid", "class_accuracy")
            if metric in arms[a] and metric in arms[b]}
    derived = {arm: common.read_json(os.path.join(work, f"derive_{arm}", "derive_result.json"))
               for arm in REWARDS}
    searches = {arm: common.read_json(os.path.join(work, f"search_{arm}", "search_result.json"))
                ["top_archs"] for arm in REWARDS}
    return {"settings": {"resolution": ev.RESOLUTION, **scale, "train_seeds": train_seeds,
                         "unconditional_arch": UNCONDITIONAL_ARCH},
            "classifier": info, "arms": arms, "differences": differences,
            "derive": derived, "top_archs": searches}


LABELS = {"cond_is": "conditional search, IS reward",
          "cond_accuracy": "conditional search, class-accuracy reward",
          "uncond_arch_cond": "unconditional search's architecture, trained conditionally",
          "uncond": "unconditional search's architecture, trained unconditionally"}


def markdown(results) -> str:
    acc = results["classifier"].get("test_accuracy")
    lines = [f"Scores by the 16-px CIFAR-10 classifier ({acc:.1%} test accuracy), not "
             "Inception numbers; mean +- sd over seeds, each seed in brackets." if acc else "",
             "", "| arm | architecture | IS | FID | class asked for, recognised (%) |",
             "|---|---|---|---|---|"]

    def cell(row, metric, scale=1.0, fmt=".2f"):
        if metric not in row:
            return "-"
        values = " / ".join(f"{v * scale:{fmt}}" for v in row[metric])
        return (f"{row[metric + '_avg'] * scale:{fmt}} +- {row[metric + '_sd'] * scale:{fmt}} "
                f"({values})")

    for arm, row in results["arms"].items():
        lines.append(f"| {LABELS[arm]} | `{row['arch']}` | {cell(row, 'is_mean')} | "
                     f"{cell(row, 'fid')} | {cell(row, 'class_accuracy', 100, '.1f')} |")
    lines += [""] + common.differences_table(results["differences"], {"class_accuracy": 100})
    return "\n".join(lines)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    arms = list(results["arms"])
    for ax, (metric, title, scale) in zip(axes, (
            ("is_mean", "IS (higher is better)", 1), ("fid", "FID (lower is better)", 1),
            ("class_accuracy", "class asked for, recognised (%)", 100))):
        for x, arm in enumerate(arms):
            row = results["arms"][arm]
            if metric not in row:
                continue
            values = [v * scale for v in row[metric]]
            ax.bar(x, row[metric + "_avg"] * scale, color="0.85")
            ax.plot([x] * len(values), values, "o", color="tab:blue", ms=4)
        ax.set_xticks(range(len(arms)))
        ax.set_xticklabels(["cond.\nIS reward", "cond.\naccuracy reward", "uncond. arch\ncond.",
                            "uncond."][:len(arms)], fontsize=8)
        ax.set_title(title)
    fig.suptitle("Conditional search on CIFAR-10 at 16 px: found architectures trained alone "
                 "(bars: mean, dots: seeds)")
    fig.tight_layout()
    common.save_figure(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work_dir", required=True)
    p.add_argument("--data", default=common.DATA, help="the CIFAR-10 JPEG tarball")
    p.add_argument("--scale", default="full", choices=sorted(ev.SCALES))
    p.add_argument("--lanes", type=int, default=2, help="commands run at a time")
    p.add_argument("--train_seeds", type=int, default=TRAIN_SEEDS)
    p.add_argument("--results", default=os.path.join(HERE, "search.json"))
    p.add_argument("--plot", default=os.path.join(ROOT, "docs", "conditional_search.png"))
    args = p.parse_args(argv)
    if args.train_seeds < 2:
        p.error("--train_seeds must be at least 2")
    if not os.path.exists(args.data):
        p.error(f"--data={args.data}: no such file (the CIFAR-10 JPEG tarball)")
    scale = ev.SCALES[args.scale]
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    root = common.extract_cifar(work, args.data)
    classifier, stats, info = ev.prepare_scoring(args, work, root, scale)
    common.run_parallel([search_job(args, work, root, scale, classifier, a)
                         for a in REWARDS], args.lanes)
    common.run_parallel([derive_job(args, work, root, scale, classifier, stats, a)
                         for a in REWARDS], args.lanes)
    common.run_parallel([train_job(args, work, root, scale, classifier, stats, arm, s)
                         for s in range(args.train_seeds) for arm in ARMS], args.lanes)
    results = analyse(work, info, scale, args.train_seeds)
    common.publish(work, results, args.results, args.plot, plot, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
