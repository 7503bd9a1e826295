"""Rewards without labels on CIFAR-10 with the labels thrown away (issue 36's evidence).

The search-evidence experiment's scale (``experiments/search_evidence``: 16 px, bottom
width 2, G / D width 32, 30 search iterations of 150 shared iterations, seed 0), on the
50,000 CIFAR-10 training images put in one folder, one class: the search cannot see a
label anywhere. A 16-px CIFAR-10 classifier trained on the *labelled* images, which no
search or derive ever sees, scores what comes out (IS and FID; its test accuracy is
recorded).

1. The three label-free networks (``--classifier=label_free:KIND``: ``rotation``,
   ``contrastive``, ``random``) learnt once from the unlabelled folder at 16 px.
2. Two searches with the default label-free reward (``--reward=kid`` in the
   ``contrastive`` network's features, what ``--reward=auto`` picks on a one-class
   folder): the RL controller and random search with weight sharing, same budget.
3. ``autogan-derive --select_by=fid`` on each, in the same label-free features (the
   labelled scorer stays unseen); the best of each is trained alone with seeds
   0 .. ``--train_seeds`` - 1 and scored by the labelled classifier.
4. **Proxy vs real**: ``--num_archs`` architectures (both searches' top-K and uniform
   ones) scored on the RL search's final supernet by every candidate reward (KID in each
   label-free network's features, and the labelled IS reward a user with labels would
   have), and trained alone (seed 0): Spearman's correlation of each reward with the
   labelled IS and -FID, with bootstrap intervals.

    python experiments/label_free_reward/cifar.py --work_dir=/tmp/label_free_cifar

Resumable (finished commands are skipped, killed ones resume from their checkpoints);
``--lanes=2`` runs two commands at a time with one thread each; ``--scale=smoke`` checks
the pipeline in minutes. Writes ``--results`` (``cifar.json`` beside this script),
``--plot`` and Markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import autogan_tf.cli  # noqa: F401 - TensorFlow's native log lines hidden, as in the commands

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))  # experiments/: the scripts' shared helpers
import common  # noqa: E402

ev = common.load_script("search_evidence/run.py")  # its settings, steps and statistics
KINDS = ("rotation", "contrastive", "random")
SEARCH_KIND = "contrastive"  # search.rewards.DEFAULT_LABEL_FREE: what --reward=auto picks
SEARCHES = ("rl", "random")
TRAIN_SEEDS = 4



def unlabelled_folder(work, root):
    """``WORK/unlabelled/train/images/``: every CIFAR-10 training image, one class (symlinks)."""
    folder = os.path.join(work, "unlabelled")
    if not os.path.isdir(folder):
        tmp = folder + ".tmp"
        images = os.path.join(tmp, "train", "images")
        os.makedirs(images, exist_ok=True)
        train = os.path.join(root, "train")
        for name in sorted(os.listdir(train)):
            for file in sorted(os.listdir(os.path.join(train, name))):
                link = os.path.join(images, f"{name}_{file}")
                if not os.path.lexists(link):
                    os.symlink(os.path.join(train, name, file), link)
        os.replace(tmp, folder)
    return folder


def label_free_networks(work, unlabelled, scale):
    """Each label-free network learnt from the unlabelled folder at 16 px (cached)."""
    from autogan_tf.metrics import label_free

    networks = {}
    for kind in KINDS:
        path = os.path.join(work, label_free.file_name(kind))
        start = time.time()
        path, info = label_free.network(kind, f"folder:{unlabelled}", path,
                                        image_size=ev.RESOLUTION, steps=scale["label_free_steps"],
                                        echo=common.log)
        if "seconds" not in info:
            info = {**info, "seconds": time.time() - start}
        networks[kind] = {"path": path, "info": info}
    return networks


def search_job(args, work, unlabelled, scale, network, kind):
    model_dir = os.path.join(work, f"search_{kind}")

    def job():
        if os.path.exists(os.path.join(model_dir, "search_result.json")):
            return
        common.run_command(f"search_{kind}", [
            "autogan-search", f"--model_dir={model_dir}", f"--dataset=folder:{unlabelled}",
            f"--search={kind}", "--reward=kid", f"--classifier={network}", "--seed=0",
            *scale["model"], *scale["search"], *ev.threads_flag(args)], work)
    return f"search_{kind}", job


def derive_job(args, work, unlabelled, scale, network, kind):
    """Derive in the label-free features: ranked by FID there (IS means nothing in them)."""
    model_dir = os.path.join(work, f"derive_{kind}")

    def job():
        if os.path.exists(os.path.join(model_dir, "derive_result.json")):
            return
        common.run_command(f"derive_{kind}", [
            "autogan-derive", f"--search_result={work}/search_{kind}/search_result.json",
            f"--model_dir={model_dir}", "--select_by=fid", f"--classifier={network}",
            f"--dataset=folder:{unlabelled}", "--seed=0", *scale["model"],
            f"--max_iters={scale['derive_iters']}", "--save_every=500", "--log_every=100",
            "--eval_every=0", f"--eval_num_samples={scale['eval_samples']}",
            *ev.threads_flag(args)], work)
    return f"derive_{kind}", job


def train_dir(work, arch, seed):
    return os.path.join(work, "train", ev.run_name(arch, seed))


def train_job(args, work, unlabelled, scale, scorer, stats, arch, seed):
    """``arch`` trained alone on the unlabelled folder, scored by the labelled classifier."""
    model_dir = train_dir(work, arch, seed)
    result = os.path.join(model_dir, "eval_final.json")

    def job():
        if os.path.exists(result):
            return
        name = ev.run_name(arch, seed)
        common.run_command(f"train_{name}", [
            "autogan-train", f"--model_dir={model_dir}", f"--arch={arch}", f"--seed={seed}",
            *ev.threads_flag(args),
            *ev.train_flags(unlabelled, scale, scorer, stats, scale["train_iters"])], work)
        common.run_command(f"eval_{name}", [
            "autogan-evaluate", f"--model_dir={model_dir}", f"--output={result}",
            f"--num_samples={scale['eval_samples']}", *ev.threads_flag(args)], work)
    return ev.run_name(arch, seed), job


def reward_settings(networks, scorer):
    """Every candidate reward as ``load_search`` overrides: KID per network, labelled IS."""
    out = {f"kid_{kind}": {"reward": "kid", "classifier": networks[kind]["path"]}
           for kind in KINDS}
    out["is_labelled"] = {"reward": "is", "classifier": scorer}
    return out


def proxy_rewards(work, archs, scale, settings):
    """Each architecture's reward on the RL search's final supernet, per candidate reward."""
    path = os.path.join(work, "proxy.json")
    cached = common.read_json(path, {})
    from autogan_tf import api

    for key, overrides in settings.items():
        todo = [a for a in archs if f"{key}/{a}" not in cached]
        if not todo:
            continue
        common.log(f"proxy {key} of {len(todo)} architectures on the RL search's supernet")
        means = api.supernet_rewards(os.path.join(work, "search_rl"), todo,
                                     seeds=ev.PROXY_SEEDS,
                                     reward_num_images=scale["proxy_images"], **overrides)
        for arch, mean in zip(todo, means):
            cached[f"{key}/{arch}"] = mean
        common.write_json(path, cached)
    return cached


def correlations(rows, keys) -> dict:
    """Spearman (with a bootstrap interval) of each reward with stand-alone IS and -FID."""
    out = {}
    for key in keys:
        proxy = [r[key] for r in rows]
        out[key] = {"is": ev.spearman_with_interval(proxy, [r["is"] for r in rows]),
                    "neg_fid": ev.spearman_with_interval(proxy, [-r["fid"] for r in rows])}
    return out


def analyse(work, archs, proxy, keys, info, networks, scale, train_seeds):
    rows = []
    for entry in archs:
        real = common.read_json(os.path.join(train_dir(work, entry["arch"], 0), "eval_final.json"))
        rows.append({**entry, **{k: proxy[f"{k}/{entry['arch']}"] for k in keys},
                     "is": real["is_mean"], "fid": real["fid"]})
    searches = {}
    for kind in SEARCHES:
        derived = common.read_json(os.path.join(work, f"derive_{kind}", "derive_result.json"))
        arch = derived["best"]["arch"]
        runs = [common.read_json(os.path.join(train_dir(work, arch, s), "eval_final.json"))
                for s in range(train_seeds)]
        is_mean, is_sd = ev.mean_std([r["is_mean"] for r in runs])
        fid_mean, fid_sd = ev.mean_std([r["fid"] for r in runs])
        searches[kind] = {"arch": arch, "derive": derived["archs"],
                          "is": [r["is_mean"] for r in runs], "fid": [r["fid"] for r in runs],
                          "is_mean": is_mean, "is_sd": is_sd, "fid_mean": fid_mean,
                          "fid_sd": fid_sd}
    difference = {m: ev.compare_seeds(searches["rl"][m], searches["random"][m])
                  for m in ("is", "fid")}
    return {"settings": {"resolution": ev.RESOLUTION, **scale, "search_reward":
                         f"kid in the {SEARCH_KIND} network's features",
                         "proxy_seeds": list(ev.PROXY_SEEDS), "train_seeds": train_seeds},
            "classifier": info, "label_free_networks": {k: v["info"] for k, v in networks.items()},
            "architectures": rows, "correlation": correlations(rows, keys),
            "rl_vs_random": searches, "rl_minus_random": difference}


def markdown(results) -> str:
    acc = results["classifier"].get("test_accuracy")
    lines = [f"Quality by the labelled 16-px CIFAR-10 classifier ({acc:.1%} test accuracy), "
             "which no search or derive saw; not Inception numbers." if acc else "", "",
             "| reward on the supernet | Spearman with IS | with -FID | archs |", "|---|---|---|---|"]
    for key, r in results["correlation"].items():
        lines.append(f"| {key} | {r['is']['rho']:.2f} [{r['is']['low']:.2f}, {r['is']['high']:.2f}] "
                     f"| {r['neg_fid']['rho']:.2f} [{r['neg_fid']['low']:.2f}, "
                     f"{r['neg_fid']['high']:.2f}] | {r['is']['n']} |")
    lines += ["", "| search (label-free reward) | derived architecture | IS (seeds) | FID (seeds) |",
              "|---|---|---|---|"]
    for kind, row in results["rl_vs_random"].items():
        lines.append(f"| {kind} | `{row['arch']}` | {row['is_mean']:.2f} +- {row['is_sd']:.2f} "
                     f"({' / '.join(f'{v:.2f}' for v in row['is'])}) | {row['fid_mean']:.2f} +- "
                     f"{row['fid_sd']:.2f} ({' / '.join(f'{v:.2f}' for v in row['fid'])}) |")
    lines += ["", "| RL - random | difference of means | Welch p | seeds per side for 80 % power |",
              "|---|---|---|---|"]
    for metric, r in results["rl_minus_random"].items():
        lines.append(f"| {metric.upper()} | {r['difference']:+.2f} | {r['welch_p']:.2f} | "
                     f"{r['seeds_needed']} |")
    return "\n".join(lines)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(results["correlation"])
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.2))
    rows = results["architectures"]
    for ax, key in zip(axes, keys):
        ax.scatter([r[key] for r in rows], [r["fid"] for r in rows], s=14)
        rho = results["correlation"][key]["neg_fid"]["rho"]
        ax.set_title(f"{key}\nSpearman with -FID {rho:.2f}", fontsize=9)
        ax.set_xlabel("reward on the supernet")
    axes[0].set_ylabel("stand-alone FID (labelled scorer)")
    fig.tight_layout()
    common.save_figure(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work_dir", required=True)
    p.add_argument("--data", default=common.DATA, help="the CIFAR-10 JPEG tarball")
    p.add_argument("--scale", default="full", choices=sorted(ev.SCALES))
    p.add_argument("--lanes", type=int, default=2, help="commands run at a time")
    p.add_argument("--num_archs", type=int, default=ev.NUM_ARCHS)
    p.add_argument("--train_seeds", type=int, default=TRAIN_SEEDS)
    p.add_argument("--results", default=os.path.join(HERE, "cifar.json"))
    p.add_argument("--plot", default=os.path.join(ROOT, "docs", "label_free_cifar.png"))
    args = p.parse_args(argv)
    if args.num_archs < 12 and args.scale == "full":
        p.error("--num_archs must be at least 12 (the issue's count)")
    if args.train_seeds < 2:
        p.error("--train_seeds must be at least 2")
    if not os.path.exists(args.data):
        p.error(f"--data={args.data}: no such file (the CIFAR-10 JPEG tarball)")
    scale = {**ev.SCALES[args.scale],
             "label_free_steps": 300 if args.scale == "full" else 4}
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    root = common.extract_cifar(work, args.data)
    scorer, stats, info = ev.prepare_scoring(args, work, root, scale)  # labelled: unseen
    unlabelled = unlabelled_folder(work, root)
    networks = label_free_networks(work, unlabelled, scale)
    network = networks[SEARCH_KIND]["path"]
    common.run_parallel([search_job(args, work, unlabelled, scale, network, k)
                         for k in SEARCHES], args.lanes)
    common.run_parallel([derive_job(args, work, unlabelled, scale, network, k)
                         for k in SEARCHES], args.lanes)
    archs = ev.choose_archs(work, args.num_archs)
    common.write_json(os.path.join(work, "archs.json"), archs)
    settings = reward_settings(networks, scorer)
    proxy = proxy_rewards(work, [a["arch"] for a in archs], scale, settings)
    runs = {(a["arch"], 0) for a in archs}
    for kind in SEARCHES:
        best = common.read_json(os.path.join(work, f"derive_{kind}", "derive_result.json"))["best"]
        runs |= {(best["arch"], s) for s in range(args.train_seeds)}
    common.run_parallel([train_job(args, work, unlabelled, scale, scorer, stats, a, s)
                         for a, s in sorted(runs, key=lambda r: (r[1], r[0]))], args.lanes)
    results = analyse(work, archs, proxy, list(settings), info, networks, scale,
                      args.train_seeds)
    common.publish(work, results, args.results, args.plot, plot, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
