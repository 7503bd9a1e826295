"""The README's quick start command for several seeds: does every run reach IS >= 4?

Issue #13's check. Runs ``autogan-quickstart --output_dir=WORK_DIR/seed_N --seed=N`` exactly
as a user would (a subprocess, the command's own defaults), then appends its figures
(architecture, IS/FID of 1,000 EMA samples, the held-out real images' IS, the reward spread,
run time) to ``--results``:

    python experiments/quick_start_seeds/run.py --work_dir=/tmp/seeds --seeds=0,1,2,3,4 \\
        --results=experiments/quick_start_seeds/results.json \\
        --markdown=experiments/quick_start_seeds/RESULTS.md

``--quickstart_args`` appends arguments to every command, e.g. a replaced setting (with
``--conditional`` the figures add the requested-class accuracy of the 1,000 samples and of
each row of the class-per-row grid):

    python experiments/quick_start_seeds/run.py --work_dir=/tmp/seeds_bn --seeds=0,1 \\
        --quickstart_args="--search_setting=reward_bn=batch" \\
        --results=/tmp/seeds_bn/results.json

Seeds already in the results file are skipped (a file written with other arguments is
refused), and a killed quick start resumes from its own checkpoints when rerun.
``results.json`` beside this script holds what the command as written measured;
``results_four_bar_stripes.json`` the same before the stripes classes of ``shapes`` had two
bars instead of four (and training 4,000 iterations instead of 3,000), and
``results_before_data_order_fix.json`` before that, when the data order was not yet the
seed's alone.
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", required=True, help="one output directory per seed")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated integers")
    parser.add_argument("--results", required=True, help="JSON file the figures go to")
    parser.add_argument("--quickstart_args", default="",
                        help="arguments appended to every autogan-quickstart command")
    parser.add_argument("--markdown", default=None,
                        help="a RESULTS.md whose 'Current figures' section is rewritten from "
                             "the results")
    args = parser.parse_args(argv)
    try:
        args.quickstart_args = shlex.split(args.quickstart_args)
    except ValueError as e:
        parser.error(f"--quickstart_args: {e}")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    return args


def cpu_model() -> str:
    """The CPU's model name and number and whether it has bf16 units (/proc/cpuinfo), which
    set the run time."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or "unknown"
    flags = fields.get("flags", "").split()
    units = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return (f"{fields.get('model name', 'unknown')} (model {fields.get('model', '?')}, "
            f"{os.cpu_count()} cores, {', '.join(units) or 'no bf16 units'})")


def run_seed(seed: int, work_dir: str, extra_args=()) -> dict:
    """One quick start; its figures from ``quickstart.json``.

    Raises:
      RuntimeError: the command failed (its log is named).
    """
    out = os.path.join(work_dir, f"seed_{seed}")
    log = out + ".log"
    start = time.time()
    with open(log, "w", encoding="utf-8") as f:
        code = subprocess.call(["autogan-quickstart", f"--output_dir={out}", f"--seed={seed}",
                                *extra_args], stdout=f, stderr=subprocess.STDOUT)
    if code != 0:
        raise RuntimeError(f"seed {seed}: autogan-quickstart exited with {code}; see {log}")
    with open(os.path.join(out, "quickstart.json"), encoding="utf-8") as f:
        q = json.load(f)
    return {"seed": seed, "arch": q["best_arch"], "is_mean": round(q["is_mean"], 3),
            "is_std": round(q["is_std"], 3), "fid": round(q["fid"], 2),
            "real_is_mean": round(q["real_is_mean"], 3),
            "classifier_accuracy": q["classifier_accuracy"],
            "reward_spread": q["search_reward_spread"], "run_time_s": q["run_time_s"],
            "wall_s": round(time.time() - start, 1),
            **({"class_accuracy": q["class_accuracy"], "grid_row_accuracy": q["grid_row_accuracy"]}
               if q.get("conditional") else {})}


def figures_markdown(results: dict) -> str:
    """The 'Current figures' section of RESULTS.md: a row per seed and a summary line."""
    runs = sorted(results["runs"], key=lambda r: r["seed"])
    scores = [r["is_mean"] for r in runs]
    lines = [f"Measured on {results['machine']}, the command as written "
             f"({', '.join(sorted({r['date'] for r in runs}))}); `results.json` holds every "
             "run.", "",
             "| seed | architecture | IS (+- over splits) | FID | real images' IS | "
             "classifier accuracy | reward spread | run time (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['seed']} | `{r['arch']}` | {r['is_mean']:.2f} +- {r['is_std']:.2f} "
                     f"| {r['fid']:.1f} | {r['real_is_mean']:.2f} | "
                     f"{100 * r['classifier_accuracy']:.1f} % | {r['reward_spread']:.2f} | "
                     f"{r['run_time_s']:.0f} |")
    lines += ["", f"IS over {len(runs)} seeds: min {min(scores):.2f}, mean "
              f"{sum(scores) / len(scores):.2f}, max {max(scores):.2f}; "
              f"{sum(s < 4 for s in scores)} below 4."]
    return "\n".join(lines) + "\n"


def write_markdown(path: str, results: dict):
    """Replace the body of ``## Current figures`` in ``path`` by `figures_markdown`."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, _, rest = text.partition("## Current figures\n")
    _, _, tail = rest.partition("\n## ")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}## Current figures\n\n{figures_markdown(results)}\n## {tail}")


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    results = {"what": "the README's quick start command per seed (IS/FID of 1,000 EMA samples "
                       "scored by the command's own shapes classifier)",
               "machine": cpu_model(), "quickstart_args": args.quickstart_args, "runs": []}
    if os.path.exists(args.results):
        with open(args.results, encoding="utf-8") as f:
            results = json.load(f)
        if results.get("quickstart_args", []) != args.quickstart_args:
            sys.exit(f"{args.results} holds runs with --quickstart_args "
                     f"{shlex.join(results.get('quickstart_args', []))!r}, not "
                     f"{shlex.join(args.quickstart_args)!r}: name another --results")
    done = {r["seed"] for r in results["runs"]}
    for seed in args.seeds:
        if seed in done:
            continue
        run = run_seed(seed, args.work_dir, args.quickstart_args)
        results["runs"].append({**run, "date": time.strftime("%Y-%m-%d")})
        with open(args.results, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
        print(json.dumps(results["runs"][-1]), flush=True)
    if args.markdown:
        write_markdown(args.markdown, results)
    scores = [r["is_mean"] for r in results["runs"]]
    print(f"IS over {len(scores)} seeds: min {min(scores):.2f}, mean "
          f"{sum(scores) / len(scores):.2f}; below 4: {sum(s < 4 for s in scores)}")


if __name__ == "__main__":
    sys.exit(main())
