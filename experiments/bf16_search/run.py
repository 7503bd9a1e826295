"""Does the search decide the same in bfloat16, and does RL beat random over several searches?

Issue 34's evidence on the search, at the search-evidence experiment's scale
(``experiments/search_evidence``: CIFAR-10 at 16 px, its model and search budgets, its
16-px classifier as the reward and the scorer), every step with the package's command lines:

1. **searches** with the same budget: RL in float32 and random search in float32, each with
   seeds 0 .. ``--search_seeds`` - 1, and RL in bfloat16 with seed 0, the same seed and
   settings as the float32 RL search of seed 0;
2. **derive** each search's top-K (``autogan-derive``, in the search's precision, as a user
   who searched in bfloat16 would);
3. **decisions**: the overlap of the bfloat16 search's final top-K with the float32 one's,
   and the rewards the two seed-0 RL supernets give the same ``--num_archs`` architectures
   (both top-K's, then uniformly random ones): their Spearman correlation with each other
   and with those architectures trained alone (seed 0);
4. **quality**: the derived architectures of the three seed-0 searches trained alone with
   ``--train_seeds`` seeds, those of the other searches with ``--extra_train_seeds``; every
   stand-alone training runs in float32, so the architectures are compared, not the
   arithmetic, and machines with and without bfloat16 units agree. Reported: bfloat16
   search minus float32 search (same seed), and RL minus random, both on the seed-0
   searches' architectures and over the searches (one value per search: its architecture's
   mean over its training seeds).

    pip install -e '.[experiments]'        # matplotlib, for the plot
    python experiments/bf16_search/run.py --work_dir=/tmp/bf16_search

Every step is resumable: rerun the same command after a kill (finished commands are
skipped, killed ones resume from their checkpoints); ``--lanes=2`` runs two commands at a
time with one thread each; ``tools/experiment_state.py`` carries the finished steps to
another machine. Output: ``WORK/results.json`` (and ``--results``), the plot ``--plot``
and a Markdown table on stdout. ``--scale=smoke`` checks the pipeline in minutes.
"""

from __future__ import annotations

import argparse
import os
import sys

import autogan_tf.cli  # noqa: F401 - TensorFlow's native log lines hidden, as in the commands

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # experiments/: the scripts' shared helpers
import common  # noqa: E402

ev = common.load_script("search_evidence/run.py")  # its scale, scorer, training and statistics
SEARCH_SEEDS = 3
TRAIN_SEEDS = 8
EXTRA_TRAIN_SEEDS = 4
REFERENCE, BF16, RANDOM = "rl_s0", "rl_bf16_s0", "random_s0"


def searches(search_seeds):
    """``{name: (kind, seed, precision)}`` of every search, the seed-0 ones first."""
    out = {REFERENCE: ("rl", 0, "float32"), BF16: ("rl", 0, "bfloat16"),
           RANDOM: ("random", 0, "float32")}
    for seed in range(1, search_seeds):
        out[f"rl_s{seed}"] = ("rl", seed, "float32")
        out[f"random_s{seed}"] = ("random", seed, "float32")
    return out


def search_job(args, work, root, scale, classifier, name, kind, seed, precision):
    model_dir = os.path.join(work, f"search_{name}")

    def job():
        if os.path.exists(os.path.join(model_dir, "search_result.json")):
            return
        common.run_command(f"search_{name}", [
            "autogan-search", f"--model_dir={model_dir}", f"--dataset=folder:{root}",
            f"--search={kind}", f"--classifier={classifier}", f"--seed={seed}",
            f"--precision={precision}", *scale["model"], *scale["search"],
            *ev.threads_flag(args)], work)
    return f"search_{name}", job


def derive_job(args, work, root, scale, classifier, stats, name, precision):
    model_dir = os.path.join(work, f"derive_{name}")

    def job():
        if os.path.exists(os.path.join(model_dir, "derive_result.json")):
            return
        common.run_command(f"derive_{name}", [
            "autogan-derive", f"--search_result={work}/search_{name}/search_result.json",
            f"--model_dir={model_dir}", "--seed=0", f"--precision={precision}",
            *ev.threads_flag(args),
            *ev.train_flags(root, scale, classifier, stats, scale["derive_iters"])], work)
    return f"derive_{name}", job


def top_k(work, name):
    """A search's final top-K architectures, best first, each once (the controller can
    sample one architecture several times, and the top-K then holds it several times)."""
    result = common.read_json(os.path.join(work, f"search_{name}", "search_result.json"))
    return list(dict.fromkeys(entry["arch_str"] for entry in result["top_archs"]))


def derived(work, name):
    """The architecture ``autogan-derive`` kept from a search's top-K."""
    result = common.read_json(os.path.join(work, f"derive_{name}", "derive_result.json"))
    return result["best"]["arch"]


def search_seconds(work, name):
    """A search's wall time: the sum of its ``wall_time`` records (one per resumed part),
    or None without a log."""
    path = os.path.join(work, f"search_{name}", "search_log.jsonl")
    if not os.path.exists(path):
        return None
    parts = [r["seconds"] for r in common.read_jsonl(path) if r.get("event") == "wall_time"]
    return sum(parts) if parts else None


def choose_archs(work, num_archs, seed=0):
    """The float32 and bfloat16 RL searches' top-K (seed 0), then uniformly random ones.

    Returns:
      ``[{"arch": str, "source": "float32"|"bfloat16"|"both"|"uniform"}]``, no duplicates.
    """
    f32, bf16 = top_k(work, REFERENCE), top_k(work, BF16)
    chosen = [{"arch": a, "source": "both" if a in bf16 else "float32"} for a in f32]
    chosen += [{"arch": a, "source": "bfloat16"} for a in bf16 if a not in f32]
    return ev.fill_uniform(chosen, num_archs, seed)


def proxy_rewards(work, archs, scale, classifier):
    """Each architecture's reward on the two seed-0 RL supernets (cached in ``WORK``)."""
    path = os.path.join(work, "proxy.json")
    cached = common.read_json(path, {})
    from autogan_tf import api

    for name in (REFERENCE, BF16):
        todo = [a for a in archs if f"{name}/{a}" not in cached]
        if not todo:
            continue
        common.log(f"rewards of {len(todo)} architectures on the {name} supernet")
        means = api.supernet_rewards(os.path.join(work, f"search_{name}"), todo,
                                     seeds=ev.PROXY_SEEDS, classifier=classifier,
                                     reward_num_images=scale["proxy_images"])
        cached.update({f"{name}/{a}": m for a, m in zip(todo, means)})
        common.write_json(path, cached)
    return cached


def stand_alone_runs(work, names, archs, train_seeds, extra_train_seeds):
    """``{(arch, seed)}`` to train alone: every architecture of the correlation with seed 0,
    the seed-0 searches' derived ones with ``train_seeds``, the others' with the extra."""
    runs = {(a, 0) for a in archs}
    for name in names:
        seeds = train_seeds if name in (REFERENCE, BF16, RANDOM) else extra_train_seeds
        runs |= {(derived(work, name), s) for s in range(seeds)}
    return sorted(runs, key=lambda r: (r[1], r[0]))


def quality(work, arch, seeds):
    runs = [ev.stand_alone(work, arch, s) for s in range(seeds)]
    is_values, fid_values = [r["is_mean"] for r in runs], [r["fid"] for r in runs]
    is_mean, is_sd = ev.mean_std(is_values)
    fid_mean, fid_sd = ev.mean_std(fid_values)
    return {"arch": arch, "is": is_values, "fid": fid_values, "is_mean": is_mean,
            "is_sd": is_sd, "fid_mean": fid_mean, "fid_sd": fid_sd}


def analyse(work, specs, archs, proxy, info, scale, train_seeds, extra_train_seeds) -> dict:
    """Decisions (top-K overlap, reward correlations) and quality (found architectures)."""
    f32, bf16 = top_k(work, REFERENCE), top_k(work, BF16)
    rows = []
    for entry in archs:
        real = ev.stand_alone(work, entry["arch"], 0)
        rows.append({**entry, "reward_float32": proxy[f"{REFERENCE}/{entry['arch']}"],
                     "reward_bfloat16": proxy[f"{BF16}/{entry['arch']}"],
                     "is": real["is_mean"], "fid": real["fid"]})
    column = {key: [r[key] for r in rows] for key in ("reward_float32", "reward_bfloat16", "is")}
    neg_fid = [-r["fid"] for r in rows]
    correlation = {"bfloat16_vs_float32": ev.spearman_with_interval(
        column["reward_bfloat16"], column["reward_float32"])}
    for precision in ("float32", "bfloat16"):
        xs = column[f"reward_{precision}"]
        correlation[f"{precision}_vs_is"] = ev.spearman_with_interval(xs, column["is"])
        correlation[f"{precision}_vs_neg_fid"] = ev.spearman_with_interval(xs, neg_fid)
    found = {}
    for name, (kind, seed, precision) in specs.items():
        seeds = train_seeds if name in (REFERENCE, BF16, RANDOM) else extra_train_seeds
        found[name] = {"search": kind, "seed": seed, "precision": precision,
                       "top_k": top_k(work, name), "search_seconds": search_seconds(work, name),
                       **quality(work, derived(work, name), seeds)}
    differences = {f"{a} - {b}": {m.upper(): ev.compare_seeds(found[a][m], found[b][m])
                                  for m in ("is", "fid")}
                   for a, b in ((BF16, REFERENCE), (REFERENCE, RANDOM))}
    by_kind = {kind: [v for v in found.values()
                      if v["search"] == kind and v["precision"] == "float32"]
               for kind in ("rl", "random")}
    if min(len(v) for v in by_kind.values()) >= 2:
        differences["RL - random, over searches"] = {
            m.upper(): ev.compare_seeds([v[f"{m}_mean"] for v in by_kind["rl"]],
                                        [v[f"{m}_mean"] for v in by_kind["random"]])
            for m in ("is", "fid")}
    return {"settings": {"resolution": ev.RESOLUTION, **scale,
                         "proxy_seeds": list(ev.PROXY_SEEDS), "train_seeds": train_seeds,
                         "extra_train_seeds": extra_train_seeds, "training_precision": "float32"},
            "classifier": info,
            "top_k": {"float32": f32, "bfloat16": bf16,
                      "overlap": len(set(f32) & set(bf16)), "k": len(f32),
                      "same_best": f32[0] == bf16[0],
                      # then the stand-alone comparison below is the same runs twice
                      "same_derived": found[REFERENCE]["arch"] == found[BF16]["arch"]},
            "architectures": rows, "correlation": correlation, "found": found,
            "differences": differences}


def speed_line(found) -> list:
    """The two seed-0 RL searches' wall times, when both logs had them (they ran side by
    side, one thread each, so they shared the machine alike)."""
    f32, bf16 = found[REFERENCE]["search_seconds"], found[BF16]["search_seconds"]
    if not (f32 and bf16):
        return []
    return [f"Wall time of the seed-0 RL search: {f32 / 60:.1f} min in float32, "
            f"{bf16 / 60:.1f} min in bfloat16 ({f32 / bf16:.2f}x).", ""]


def markdown(results) -> str:
    acc = results["classifier"].get("test_accuracy")
    top = results["top_k"]
    lines = [f"Scores by the 16-px CIFAR-10 classifier ({acc:.1%} test accuracy), not Inception "
             "numbers; every stand-alone training in float32." if acc is not None else "", "",
             f"Final top-K of the seed-0 RL search (distinct architectures): {top['overlap']} of "
             f"{top['k']} the same "
             f"in bfloat16 and float32; the same best: {'yes' if top['same_best'] else 'no'}; "
             f"the same derived architecture: {'yes' if top['same_derived'] else 'no'}.", "",
             *speed_line(results["found"]),
             "| rewards | against | Spearman rho | 95 % bootstrap interval | archs |",
             "|---|---|---|---|---|"]
    labels = {"bfloat16_vs_float32": ("bfloat16 supernet", "float32 supernet"),
              "float32_vs_is": ("float32 supernet", "IS trained alone"),
              "float32_vs_neg_fid": ("float32 supernet", "-FID trained alone"),
              "bfloat16_vs_is": ("bfloat16 supernet", "IS trained alone"),
              "bfloat16_vs_neg_fid": ("bfloat16 supernet", "-FID trained alone")}
    for key, (left, right) in labels.items():
        r = results["correlation"][key]
        lines.append(f"| {left} | {right} | {r['rho']:.2f} | [{r['low']:.2f}, {r['high']:.2f}] "
                     f"| {r['n']} |")
    lines += ["", "| search | seed | precision | derived architecture | IS | FID |",
              "|---|---|---|---|---|---|"]
    for row in results["found"].values():
        lines.append(f"| {row['search']} | {row['seed']} | {row['precision']} | `{row['arch']}` "
                     f"| {common.spread(row['is_mean'], row['is_sd'], row['is'])} "
                     f"| {common.spread(row['fid_mean'], row['fid_sd'], row['fid'])} |")
    lines += [""] + common.differences_table(results["differences"])
    return "\n".join(lines)


def plot(results, path):
    """Two panels: the two supernets' rewards on the same architectures, and every search's
    derived architecture trained alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for source, marker in (("both", "o"), ("float32", "s"), ("bfloat16", "^"), ("uniform", "x")):
        rows = [r for r in results["architectures"] if r["source"] == source]
        if rows:
            left.scatter([r["reward_float32"] for r in rows], [r["reward_bfloat16"] for r in rows],
                         marker=marker, label=f"{source} top-K" if source != "uniform" else source)
    rho = results["correlation"]["bfloat16_vs_float32"]
    left.set(title=f"same architectures, two supernets: Spearman {rho['rho']:.2f}",
             xlabel="reward, float32 search (IS)", ylabel="reward, bfloat16 search (IS)")
    left.legend(fontsize=8)
    names = list(results["found"])
    for i, name in enumerate(names):
        row = results["found"][name]
        colour = {"rl": "C0", "random": "C1"}[row["search"]]
        right.bar(i, row["is_mean"], yerr=row["is_sd"], capsize=4, alpha=0.5, color=colour,
                  hatch="//" if row["precision"] == "bfloat16" else None)
        right.scatter([i] * len(row["is"]), row["is"], color="k", s=8, zorder=3)
    right.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=8)
    values = [v for row in results["found"].values() for v in row["is"]]
    right.set_ylim(min(values) - 0.3, max(values) + 0.2)
    right.set(title="each search's derived architecture trained alone (float32)",
              ylabel="IS (EMA, seeds)")
    fig.tight_layout()
    common.save_figure(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work_dir", required=True)
    p.add_argument("--data", default=common.DATA, help="the CIFAR-10 JPEG tarball")
    p.add_argument("--scale", default="full", choices=sorted(ev.SCALES))
    p.add_argument("--lanes", type=int, default=2, help="commands run at a time")
    p.add_argument("--search_seeds", type=int, default=SEARCH_SEEDS,
                   help="float32 RL and random searches per method (at least 2)")
    p.add_argument("--num_archs", type=int, default=ev.NUM_ARCHS,
                   help="architectures both supernets score (at least 3)")
    p.add_argument("--train_seeds", type=int, default=TRAIN_SEEDS,
                   help="seeds of the seed-0 searches' derived architectures (at least 2)")
    p.add_argument("--extra_train_seeds", type=int, default=EXTRA_TRAIN_SEEDS,
                   help="seeds of the other searches' derived architectures (at least 2)")
    p.add_argument("--results", default=None, help="also write the results JSON here")
    p.add_argument("--plot", default=None, help="write the plot here")
    args = p.parse_args(argv)
    for flag in ("search_seeds", "train_seeds", "extra_train_seeds"):
        if getattr(args, flag) < 2:
            p.error(f"--{flag} must be at least 2 (the comparisons need a spread)")
    if args.num_archs < 3:
        p.error("--num_archs must be at least 3")
    if not os.path.exists(args.data):
        p.error(f"--data={args.data}: no such file (the CIFAR-10 JPEG tarball)")
    scale = ev.SCALES[args.scale]
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    root = common.extract_cifar(work, args.data)
    classifier, stats, info = ev.prepare_scoring(args, work, root, scale)
    specs = searches(args.search_seeds)
    common.run_parallel([search_job(args, work, root, scale, classifier, name, *spec)
                         for name, spec in specs.items()], args.lanes)
    common.run_parallel([derive_job(args, work, root, scale, classifier, stats, name, spec[2])
                         for name, spec in specs.items()], args.lanes)
    archs = choose_archs(work, args.num_archs)
    common.write_json(os.path.join(work, "archs.json"), archs)
    proxy = proxy_rewards(work, [a["arch"] for a in archs], scale, classifier)
    runs = stand_alone_runs(work, specs, [a["arch"] for a in archs], args.train_seeds,
                            args.extra_train_seeds)
    common.run_parallel([ev.train_job(args, work, root, scale, classifier, stats, a, s)
                         for a, s in runs], args.lanes)
    results = analyse(work, specs, archs, proxy, info, scale, args.train_seeds,
                      args.extra_train_seeds)
    common.publish(work, results, args.results, args.plot, plot, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
