"""Few real images: does differentiable augmentation keep D from over-fitting 10 % of CIFAR-10?

Issue 32's evidence. CIFAR-10's training split cut to 10 % (500 images per class, 5,000 in
all, chosen with a fixed seed) trains ``autogan_cifar10_a`` at the side-by-side scale
(G 64 / D 64, batch 128 / 64, n_critic 5, Adam 2e-4 with betas (0, 0.9)) for ``--iters``
generator iterations (default 1,600: 102 epochs of the 5,000 images, long enough for D to
over-fit without augmentation), with seeds 0 and 1, without and with
``--augment=translation,color,cutout``. Every ``--every`` iterations:

* FID and KID of 10,000 EMA samples against the 50,000 training images, scored by the
  CIFAR-10 classifier committed with the side-by-side experiment (its test accuracy is in
  the results; these are not Inception numbers);
* D's mean output on the 5,000 training images and on 5,000 held-out training images it
  never saw: a D that memorises its training set scores those higher (the over-fitting
  signal of Karras et al.'s ADA).

    python experiments/small_data/run.py --work_dir=/tmp/small_data \\
        --results=experiments/small_data/results.json \\
        --markdown=experiments/small_data/RESULTS.md --plot=docs/small_data.png

Every step is resumable: rerun the same command after a kill (a training checkpoints every
100 iterations, so a kill loses at most 100 of them); finished trainings and measured points
are kept (``--results`` is read back, so a later session continues the
runs it holds). ``--lanes=2`` trains two runs at a time with one thread each;
``--scale=smoke`` runs every step with tiny budgets to check the pipeline.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
import threading

import numpy as np

import autogan_tf.cli  # noqa: F401 - TensorFlow's native log lines hidden, as in the commands

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))  # experiments/: the scripts' shared helpers
from common import DATA, extract_cifar, log, read_json, run_command, write_json  # noqa: E402
SCORER = os.path.join(ROOT, "experiments", "side_by_side", "scorer", "classifier.keras")
POLICY = "translation,color,cutout"
PER_CLASS = 500  # 10 % of CIFAR-10's 5,000 training images per class
SCALES = {
    "full": {"iters": 1600, "every": 400, "save": 100, "samples": 10_000, "model": [
        "--gf_dim=64", "--df_dim=64", "--g_batch_size=128", "--d_batch_size=64",
        "--n_critic=5"]},
    "smoke": {"iters": 4, "every": 2, "save": 1, "samples": 100, "model": [
        "--gf_dim=8", "--df_dim=8", "--g_batch_size=8", "--d_batch_size=8", "--n_critic=2"]},
}


# -- data -----------------------------------------------------------------------------------
def prepare_data(work, tarball, per_class):
    """CIFAR-10 extracted, and two folders of symlinks: ``subset/train`` (``per_class`` images
    of each class, the training set) and ``heldout/`` (as many other training images)."""
    root = extract_cifar(work, tarball)
    subset, heldout = os.path.join(work, "subset"), os.path.join(work, "heldout")
    if not os.path.isdir(heldout):
        rng = np.random.default_rng(0)
        for name in sorted(os.listdir(os.path.join(root, "train"))):
            files = sorted(os.listdir(os.path.join(root, "train", name)))
            order = rng.permutation(len(files))
            for folder, chosen in ((subset + "/train", order[:per_class]),
                                   (heldout + ".tmp", order[per_class:2 * per_class])):
                os.makedirs(os.path.join(folder, name), exist_ok=True)
                for i in chosen:
                    os.symlink(os.path.join(root, "train", name, files[i]),
                               os.path.join(folder, name, files[i]))
        os.symlink(os.path.join(root, "test"), os.path.join(subset, "test"))
        os.replace(heldout + ".tmp", heldout)
    return root, subset, heldout


def reference_statistics(work, root):
    """Statistics (with KID features) of the 50,000 training images by the scorer."""
    stats = os.path.join(work, "stats_train.npz")
    if not os.path.exists(stats):
        run_command("fid_stats", ["autogan-fid-stats", f"--dataset=folder:{root}",
                                  f"--classifier={SCORER}", f"--output={stats}"], work)
    return stats


# -- the trainings ----------------------------------------------------------------------------
def run_name(augmented, seed):
    return f"{'augment' if augmented else 'plain'}_s{seed}"


def train_command(work, subset, stats, scale, augmented, seed, threads):
    iters, every = scale["iters"], scale["every"]
    cmd = ["autogan-train", f"--model_dir={work}/runs/{run_name(augmented, seed)}",
           f"--dataset=folder:{subset}", "--arch=autogan_cifar10_a", *scale["model"],
           "--g_lr=2e-4", "--d_lr=2e-4", "--beta1=0.0", "--beta2=0.9", "--nolr_decay",
           f"--max_iters={iters}", f"--eval_every={every}",
           f"--eval_num_samples={scale['samples']}", f"--save_every={scale['save']}",
           f"--keep_checkpoints={iters // scale['save'] + 1}", "--log_every=50",
           f"--classifier={SCORER}", f"--fid_stats={stats}", f"--seed={seed}",
           f"--augment={POLICY if augmented else ''}"]
    if threads:
        cmd.append(f"--intra_op_threads={threads}")
    return cmd


def evaluations(model_dir):
    """The periodic evaluations a run logged: step -> its scores."""
    path = os.path.join(model_dir, "metrics.jsonl")
    points = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                if "fid" in record and "step" in record:
                    points[record["step"]] = record
    return points


def d_outputs(model_dir, step, images):
    """D's mean output (the raw D of the checkpoint at ``step``) on each set of ``images``."""
    import tensorflow as tf

    from autogan_tf import models
    from autogan_tf.config import TrainConfig

    config = TrainConfig.from_dict(read_json(os.path.join(model_dir, "config.json")))
    d = models.Discriminator(config.df_dim, num_cells=3, minibatch_std=config.d_minibatch_std)
    path = os.path.join(model_dir, "checkpoints", f"ckpt-{step}")
    tf.train.Checkpoint(discriminator=d).read(path).expect_partial()
    call = tf.function(lambda x: d(x, training=False))
    return {name: float(np.mean(np.concatenate(
        [call(tf.constant(batch)).numpy().ravel()
         for batch in np.array_split(x, max(1, len(x) // 250))])))
        for name, x in images.items()}


def real_images(folder):
    from autogan_tf import data

    ds = data.make_dataset(f"folder:{folder}", 500, 32, split="train", shuffle=False,
                           repeat=False, drop_remainder=False)
    return np.concatenate(list(ds.as_numpy_iterator()))


def curve(model_dir, every, images, known):
    """The run's measured points, completing the D outputs it lacks (``known``: earlier)."""
    points = []
    for step, record in sorted(evaluations(model_dir).items()):
        point = {"step": step, **{k: record.get(k) for k in ("is_mean", "fid", "kid_mean",
                                                              "kid_std")}}
        before = next((p for p in known if p["step"] == step and "d_train" in p), None)
        if before is not None:
            point.update(d_train=before["d_train"], d_heldout=before["d_heldout"])
        elif os.path.exists(os.path.join(model_dir, "checkpoints", f"ckpt-{step}.index")):
            outs = d_outputs(model_dir, step, images)
            point.update(d_train=outs["train"], d_heldout=outs["heldout"])
        points.append(point)
    return points


# -- summary ----------------------------------------------------------------------------------
def summary(results):
    """Per step: mean (and spread) over seeds of each metric, without and with augmentation."""
    table = {}
    for name, run in results["runs"].items():
        kind = name.split("_")[0]
        for point in run["curve"]:
            row = table.setdefault(point["step"], {}).setdefault(kind, {})
            for key in ("fid", "kid_mean", "is_mean", "d_train", "d_heldout"):
                if point.get(key) is not None:
                    row.setdefault(key, []).append(point[key])
    return {step: {kind: {key: [float(np.mean(v)), float(np.std(v))] for key, v in row.items()}
                   for kind, row in kinds.items()} for step, kinds in sorted(table.items())}


def markdown(results) -> str:
    lines = [f"Scored by the side-by-side experiment's CIFAR-10 classifier "
             f"({100 * results['scorer']['test_accuracy']:.1f} % test accuracy): FID and KID of "
             f"{results['settings']['samples']:,} EMA samples against the 50,000 training "
             f"images; D's mean output on its {results['settings']['images']:,} training images "
             f"and on as many held-out ones (mean over the seeds measured; +- their spread).", "",
             "| iteration | epochs | run | seeds | FID | KID x 1000 | D(train) - D(held-out) |",
             "|---|---|---|---|---|---|---|"]
    per_epoch = results["settings"]["images_per_iteration"] / results["settings"]["images"]
    for step, kinds in summary(results).items():
        for kind in ("plain", "augment"):
            row = kinds.get(kind)
            if not row:
                continue
            seeds = sum(1 for name, run in results["runs"].items() if name.startswith(kind)
                        and any(p["step"] == step for p in run["curve"]))
            gap = "-"
            if "d_train" in row and "d_heldout" in row:
                gap = f"{row['d_train'][0] - row['d_heldout'][0]:.3f}"
            kid = f"{1000 * row['kid_mean'][0]:.2f}" if "kid_mean" in row else "-"
            label = "no augmentation" if kind == "plain" else f"`--augment={POLICY}`"
            lines.append(f"| {step} | {step * per_epoch:.0f} | {label} | {seeds} | "
                         f"{row['fid'][0]:.2f} +- {row['fid'][1]:.2f} | {kid} | {gap} |")
    return "\n".join(lines) + "\n"


def write_markdown(path, results):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, _, rest = text.partition("## Results\n")
    _, _, tail = rest.partition("\n## ")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}## Results\n\n{markdown(results)}\n## {tail}")


def plot(path, results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for name, run in sorted(results["runs"].items()):
        style = "-" if name.startswith("augment") else "--"
        steps = [p["step"] for p in run["curve"]]
        axes[0].plot(steps, [p["fid"] for p in run["curve"]], style, marker="o", label=name)
        axes[1].plot(steps, [1000 * (p["kid_mean"] or 0) for p in run["curve"]], style,
                     marker="o", label=name)
        gaps = [(p["step"], p["d_train"] - p["d_heldout"]) for p in run["curve"]
                if "d_train" in p]
        if gaps:
            axes[2].plot(*zip(*gaps), style, marker="o", label=name)
    for ax, title in zip(axes, ("FID (10,000 EMA samples)", "KID x 1000",
                                "D(train) - D(held-out)")):
        ax.set_title(title)
        ax.set_xlabel("generator iteration")
    axes[0].legend(fontsize=8)
    fig.suptitle("10 % of CIFAR-10 (5,000 images), autogan_cifar10_a at G 64 / D 64")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", required=True)
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--scale", default="full", choices=sorted(SCALES))
    parser.add_argument("--lanes", type=int, default=1)
    parser.add_argument("--results", default=os.path.join(HERE, "results.json"))
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--plot", default=None)
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    work = os.path.abspath(args.work_dir)
    per_class = PER_CLASS if args.scale == "full" else 20
    root, subset, heldout = prepare_data(work, args.data, per_class)
    stats = reference_statistics(work, root)
    accuracy = read_json(SCORER + ".json")["test_accuracy"]
    results = read_json(args.results) or {}
    settings = {"arch": "autogan_cifar10_a", "model": scale["model"], "iters": scale["iters"],
                "every": scale["every"], "samples": scale["samples"], "policy": POLICY,
                "images": 10 * per_class, "images_per_iteration": 5 * 64
                if args.scale == "full" else 2 * 8}
    if results.get("settings") != settings:
        results = {"settings": settings, "runs": {}}
    results["scorer"] = {"test_accuracy": accuracy}
    seeds = [int(s) for s in args.seeds.split(",") if s]
    jobs = [(augmented, seed) for seed in seeds for augmented in (False, True)]
    threads = 1 if args.lanes > 1 else 0
    log("reading the training and held-out images for D's outputs")
    images = {"train": real_images(os.path.join(subset, "train")),
              "heldout": real_images(heldout)}
    lock = threading.Lock()

    def measure(augmented, seed):
        """The run's curve into ``--results`` at once, so a partial experiment shows."""
        name = run_name(augmented, seed)
        known = results["runs"].get(name, {}).get("curve", [])
        with lock:
            results["runs"][name] = {"augment": augmented, "seed": seed,
                                     "curve": curve(f"{work}/runs/{name}", scale["every"],
                                                    images, known)}
            write_json(args.results, results)

    def train(job):
        augmented, seed = job
        name = run_name(augmented, seed)
        done = results["runs"].get(name, {}).get("curve", [])
        if len(done) == scale["iters"] // scale["every"] and all("d_train" in p for p in done):
            return
        run_command(f"train_{name}", train_command(work, subset, stats, scale, augmented, seed,
                                                   threads), work)
        log(f"{name}: D's outputs on the training and held-out images")
        measure(augmented, seed)

    with concurrent.futures.ThreadPoolExecutor(max(1, args.lanes)) as pool:
        for future in [pool.submit(train, job) for job in jobs]:
            future.result()
    for augmented, seed in jobs:
        measure(augmented, seed)
    results["summary"] = summary(results)
    write_json(args.results, results)
    print(markdown(results))
    if args.markdown:
        write_markdown(args.markdown, results)
    if args.plot:
        plot(args.plot, results)


if __name__ == "__main__":
    sys.exit(main())
