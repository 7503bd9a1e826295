"""The built-in shapes with their labels thrown away: a real unlabelled search (issue 36).

The quick start's scale (the shipped flagfiles ``search_quick`` and ``train_quick``), on
the shapes' 10,000 training pictures written into one folder, one class, so the search
sees no label anywhere. Three searches, each with seeds 0 .. ``--seeds`` - 1:

- ``label_free``: ``--reward=auto --classifier=auto``, what a user with an unlabelled
  folder gets: KID in the features of a contrastive network learnt from the folder;
- ``random``: random search with the same reward and budget;
- ``labelled``: the quick start's own search on the labelled shapes (IS of the labelled
  classifier), what a user with labels would get: the ceiling.

Each search's best architecture is trained alone on the unlabelled folder with
``train_quick`` (the search's seed; float32 everywhere, so that machines with and without
bfloat16 units agree) and scored by the labelled shapes classifier that no label-free
search or training ever sees (the quick start's classifier, seed 0; its test accuracy is
recorded): IS and FID of ``--num_samples`` EMA samples against the 10,000 training
pictures.

    python experiments/label_free_reward/shapes.py --work_dir=/tmp/label_free_shapes

Resumable: rerun after a kill (finished commands are skipped, killed ones resume from
their checkpoints); ``--lanes=2`` runs two commands at a time with one thread each.
``tools/experiment_state.py`` carries the finished steps to another machine. Writes
``--results`` (``shapes.json`` beside this script) and a Markdown table on stdout.
``--scale=smoke`` checks the pipeline in minutes.
"""

from __future__ import annotations

import argparse
import os
import sys

import autogan_tf.cli  # noqa: F401 - TensorFlow's native log lines hidden, as in the commands

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # experiments/: the scripts' shared helpers
import common  # noqa: E402

ev = common.load_script("search_evidence/run.py")  # its statistics
SEARCHES = {
    "label_free": ["--reward=auto", "--classifier=auto"],
    "random": ["--search=random", "--reward=auto", "--classifier=auto"],
    "labelled": ["--dataset=shapes", "--reward=is"],  # --classifier: the labelled scorer
}
SCALES = {
    "full": {"search": [], "train": [], "num_samples": 5000, "seeds": 3, "images": None},
    "smoke": {"search": ["--shared_iters=4", "--max_search_iters=2", "--ctrl_steps=1",
                         "--num_candidates=2", "--reward_num_images=50",
                         "--label_free_steps=5"],
              "train": ["--max_iters=10", "--save_every=5"], "num_samples": 100, "seeds": 2,
              "images": 300},
}


def unlabelled_folder(work, count=None):
    """``WORK/unlabelled/train/images/``: the shapes' training pictures as PNGs, one class.

    The same 10,000 pictures at the same 32 px as ``--dataset=shapes`` holds (its
    training split's seed), so the only difference is that the labels are gone;
    ``count`` keeps the first ones only (a smoke run).
    """
    from autogan_tf import data, images

    folder = os.path.join(work, "unlabelled")
    if not os.path.isdir(folder):
        common.log("writing the shapes' training pictures into one folder, without labels")
        tmp = folder + ".tmp"
        target = os.path.join(tmp, "train", "images")
        os.makedirs(target, exist_ok=True)
        pictures, _ = data.make_shapes(data.SHAPES_SPLIT_SIZES["train"], data.SHAPES_RESOLUTION,
                                       data.SHAPES_SPLIT_SEEDS["train"])
        for i, picture in enumerate(pictures[:count]):
            images.save_png(os.path.join(target, f"{i:05d}.png"), picture)
        os.replace(tmp, folder)
    return folder


def labelled_scorer(work):
    """The quick start's labelled shapes classifier (seed 0) and the FID statistics of the
    10,000 training pictures in its features."""
    from autogan_tf import quickstart
    from autogan_tf.metrics import classifiers

    path = os.path.join(work, "classifier.keras")
    path, accuracy = classifiers.train_small_classifier("shapes", path, seed=0, echo=common.log,
                                                        **quickstart.QUICK_CLASSIFIER)
    stats = os.path.join(work, "fid_stats_train.npz")
    if not os.path.exists(stats):
        common.run_command("fid_stats", ["autogan-fid-stats", "--dataset=shapes",
                                         f"--classifier={path}", "--image_size=16",
                                         f"--output={stats}"], work)
    return path, stats, {"test_accuracy": accuracy}


def threads(args):
    return [f"--intra_op_threads={1 if args.lanes > 1 else 0}"]


def search_job(args, work, folder, scorer, scale, kind, seed):
    model_dir = os.path.join(work, f"search_{kind}_s{seed}")

    def job():
        if os.path.exists(os.path.join(model_dir, "search_result.json")):
            return
        scored = [f"--classifier={scorer}"] if kind == "labelled" else []
        common.run_command(f"search_{kind}_s{seed}", [
            "autogan-search", "--flagfile=search_quick", f"--model_dir={model_dir}",
            f"--dataset=folder:{folder}", *SEARCHES[kind], *scored, f"--seed={seed}",
            *scale["search"], *threads(args)], work)
    return f"search_{kind}_s{seed}", job


def best_arch(work, kind, seed):
    result = common.read_json(os.path.join(work, f"search_{kind}_s{seed}", "search_result.json"))
    return result["top_archs"][0]["arch_str"]


def train_job(args, work, folder, scorer, stats, scale, kind, seed):
    """The best architecture of ``kind``'s search with ``seed``, trained alone and scored."""
    model_dir = os.path.join(work, "train", f"{kind}_s{seed}")
    result = os.path.join(model_dir, "eval_final.json")

    def job():
        if os.path.exists(result):
            return
        common.run_command(f"train_{kind}_s{seed}", [
            "autogan-train", "--flagfile=train_quick", f"--model_dir={model_dir}",
            f"--dataset=folder:{folder}", f"--arch={best_arch(work, kind, seed)}",
            f"--seed={seed}", "--precision=float32", f"--classifier={scorer}",
            f"--fid_stats={stats}", *scale["train"], *threads(args)], work)
        common.run_command(f"eval_{kind}_s{seed}", [
            "autogan-evaluate", f"--model_dir={model_dir}", f"--output={result}",
            f"--num_samples={scale['num_samples']}", *threads(args)], work)
    return f"{kind}_s{seed}", job


def search_log_reward(work, kind, seed):
    """The search's own reward (and the reason ``auto`` gave) from its configuration."""
    config = common.read_json(os.path.join(work, f"search_{kind}_s{seed}",
                                           "search_config.json"), {})
    return config.get("reward"), config.get("classifier")


def analyse(work, seeds, info) -> dict:
    searches = {}
    for kind in SEARCHES:
        runs = [common.read_json(os.path.join(work, "train", f"{kind}_s{s}", "eval_final.json"))
                for s in seeds]
        is_mean, is_sd = ev.mean_std([r["is_mean"] for r in runs])
        fid_mean, fid_sd = ev.mean_std([r["fid"] for r in runs])
        reward, classifier = search_log_reward(work, kind, seeds[0])
        searches[kind] = {"archs": [best_arch(work, kind, s) for s in seeds],
                          "reward": reward, "reward_classifier": os.path.basename(classifier or ""),
                          "is": [r["is_mean"] for r in runs], "fid": [r["fid"] for r in runs],
                          "is_mean": is_mean, "is_sd": is_sd, "fid_mean": fid_mean,
                          "fid_sd": fid_sd}
    differences = {f"{a} - {b}": {m.upper(): ev.compare_seeds(searches[a][m], searches[b][m])
                                  for m in ("is", "fid")}
                   for a, b in (("label_free", "random"), ("label_free", "labelled"))}
    return {"settings": {"search": "search_quick", "train": "train_quick, float32",
                         "seeds": list(seeds)},
            "classifier": info, "searches": searches, "differences": differences}


LABELS = {"label_free": "RL, label-free reward (--reward=auto)",
          "random": "random, label-free reward", "labelled": "RL, labelled IS (the quick start)"}


def markdown(results) -> str:
    acc = results["classifier"].get("test_accuracy")
    lines = [f"Scored by the labelled shapes classifier ({acc:.1%} test accuracy), which no "
             "label-free search or training saw." if acc else "", "",
             "| search | reward | found architectures (one per seed) | IS | FID |",
             "|---|---|---|---|---|"]
    for kind, row in results["searches"].items():
        archs = "<br>".join(f"`{a}`" for a in row["archs"])
        lines.append(f"| {LABELS[kind]} | {row['reward']} ({row['reward_classifier']}) | "
                     f"{archs} | {common.spread(row['is_mean'], row['is_sd'], row['is'])} | "
                     f"{common.spread(row['fid_mean'], row['fid_sd'], row['fid'], '.1f')} |")
    lines += [""] + common.differences_table(results["differences"])
    return "\n".join(lines)


TICKS = {"label_free": "RL, label-free\n(--reward=auto)", "random": "random,\nlabel-free",
         "labelled": "RL, labelled IS\n(the quick start)"}


def plot(results, path):
    """IS and FID of each search's found architecture trained alone, one point per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    kinds = list(results["searches"])
    for ax, metric, label in ((axes[0], "is", "IS (higher is better)"),
                              (axes[1], "fid", "FID (lower is better)")):
        for i, kind in enumerate(kinds):
            row = results["searches"][kind]
            ax.bar(i, row[f"{metric}_mean"], yerr=row[f"{metric}_sd"], capsize=5, alpha=0.5)
            ax.scatter([i] * len(row[metric]), row[metric], color="k", s=12, zorder=3)
        ax.set_xticks(range(len(kinds)), [TICKS[k] for k in kinds], fontsize=8)
        ax.set(ylabel=label, title=f"found architecture trained alone: {metric.upper()}")
    fig.suptitle("Shapes without labels, scored by the labelled shapes classifier", fontsize=10)
    fig.tight_layout()
    common.save_figure(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work_dir", required=True)
    p.add_argument("--scale", default="full", choices=sorted(SCALES))
    p.add_argument("--seeds", type=int, default=None, help="searches per kind (default 3)")
    p.add_argument("--lanes", type=int, default=2, help="commands run at a time")
    p.add_argument("--results", default=os.path.join(HERE, "shapes.json"))
    p.add_argument("--plot", default=None, help="also write the plot here")
    args = p.parse_args(argv)
    scale = SCALES[args.scale]
    seeds = list(range(args.seeds or scale["seeds"]))
    if len(seeds) < 2:
        p.error("--seeds must be at least 2 (the comparison needs a spread)")
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    folder = unlabelled_folder(work, scale["images"])
    scorer, stats, info = labelled_scorer(work)
    common.run_parallel([search_job(args, work, folder, scorer, scale, kind, s)
                         for s in seeds for kind in SEARCHES], args.lanes)
    common.run_parallel([train_job(args, work, folder, scorer, stats, scale, kind, s)
                         for s in seeds for kind in SEARCHES], args.lanes)
    results = analyse(work, seeds, info)
    common.publish(work, results, args.results, args.plot, plot, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
