"""What the experiment scripts share: logging, JSON files, the CIFAR-10 archive, and running
the package's command lines one or several at a time.

Each script puts this folder on ``sys.path`` and imports this module, so that a script run
as ``python experiments/<name>/<script>.py`` needs no installation of its own.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import os
import subprocess
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The CIFAR-10 JPEG archive where CI and the docs put it: ../shared beside the checkout.
DATA = os.path.join(ROOT, "..", "shared", "data", "cifar10-jpg.tar.gz")


def log(msg):
    """``msg`` on stdout after the time of day, at once (the scripts run for hours)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def read_json(path, default=None):
    """The JSON value in ``path``, or ``default`` where there is no path or no such file."""
    if not path or not os.path.exists(path):
        return default
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path, value):
    """``value`` into ``path`` whole or not at all (a kill never leaves half a file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
    os.replace(path + ".tmp", path)


def read_jsonl(path):
    """The JSON objects of the lines of ``path`` that hold one (other lines are skipped)."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:  # a line cut by a kill, or not JSON after all
                    pass
    return records


def extract_cifar(work, tarball):
    """The CIFAR-10 JPEGs extracted once under ``WORK/cifar10`` (``train/<class>``,
    ``test/<class>``); returns that folder."""
    root = os.path.join(work, "cifar10")
    if not os.path.isdir(os.path.join(root, "test")):
        log(f"extracting {tarball}")
        os.makedirs(root, exist_ok=True)
        with tarfile.open(tarball) as t:
            t.extractall(root, filter="data")
    return root


def run_command(name, cmd, work):
    """Run one command line, its output appended to ``WORK/logs/<name>.log``; raise on failure."""
    os.makedirs(os.path.join(work, "logs"), exist_ok=True)
    path = os.path.join(work, "logs", f"{name}.log")
    log(f"{name}: started (log {path})")
    start = time.time()
    with open(path, "a", encoding="utf-8") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"{name} failed with exit status {code}; see {path}. Rerun to resume")
    log(f"{name}: done in {time.time() - start:.0f} s")


def run_parallel(jobs, lanes):
    """Run ``[(name, fn)]`` ``lanes`` at a time; the first failure is raised after all end."""
    with concurrent.futures.ThreadPoolExecutor(max(1, lanes)) as pool:
        futures = [pool.submit(fn) for _, fn in jobs]
        for future in futures:
            future.result()


def load_script(relative):
    """Another experiment's script as a module, e.g. ``load_script("search_evidence/run.py")``
    for its settings and steps (the scripts are files, not an installed package)."""
    path = os.path.join(HERE, relative)
    name = relative.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def save_figure(fig, path):
    """Write a matplotlib figure to ``path`` (its folder made) at 100 dpi, and close it."""
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def publish(work, results, results_path, plot_path, plot, markdown):
    """An experiment's end: ``results`` in ``WORK/results.json`` and ``results_path``, the
    figure ``plot(results, plot_path)``, and ``markdown(results)`` on stdout (the paths may
    be empty: nothing is written there)."""
    write_json(os.path.join(work, "results.json"), results)
    if results_path:
        write_json(results_path, results)
    if plot_path:
        plot(results, plot_path)
    print(markdown(results))


def spread(mean, sd, values, fmt=".2f", scale=1.0):
    """``"mean +- sd (v1 / v2 / ...)"``: a figure over seeds as the results tables show it."""
    seeds = " / ".join(f"{v * scale:{fmt}}" for v in values)
    return f"{mean * scale:{fmt}} +- {sd * scale:{fmt}} ({seeds})"


def differences_table(differences, scales=None):
    """Markdown rows of ``{pair: {metric: compare_seeds(...)}}``: the difference of means,
    Welch's p and the seeds that would resolve it; ``scales`` multiplies a metric's
    difference (100 for a fraction shown in points)."""
    scales = scales or {}
    lines = ["| difference | metric | of means | Welch p | seeds per side for 80 % power |",
             "|---|---|---|---|---|"]
    for pair, metrics in differences.items():
        for metric, r in metrics.items():
            lines.append(f"| {pair} | {metric} | {r['difference'] * scales.get(metric, 1):+.2f} "
                         f"| {r['welch_p']:.2f} | {r['seeds_needed']} |")
    return lines
