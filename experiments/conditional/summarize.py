"""The conditional quick start beside the unconditional one, seed by seed (issue 33's first
piece of evidence).

Reads ``quick_start_seeds.json`` beside this script (written by
``experiments/quick_start_seeds/run.py --quickstart_args=--conditional``) and the
unconditional runs of the same seeds in ``experiments/quick_start_seeds/results.json``, and
rewrites the ``## Quick start`` section of ``RESULTS.md``:

    python experiments/quick_start_seeds/run.py --work_dir=/tmp/qs_cond --seeds=0,1,2 \\
        --quickstart_args=--conditional --results=experiments/conditional/quick_start_seeds.json
    python experiments/conditional/summarize.py
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def load(path):
    with open(path, encoding="utf-8") as f:
        return {r["seed"]: r for r in json.load(f)["runs"]}


def table(conditional: dict, plain: dict) -> str:
    lines = ["| seed | IS conditional | IS unconditional | FID conditional | FID unconditional "
             "| class asked for, recognised | grid rows: images showing their class (of 8) "
             "| run time conditional / unconditional (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for seed in sorted(conditional):
        c, p = conditional[seed], plain.get(seed)
        rows = ", ".join(str(round(8 * a)) for a in c["grid_row_accuracy"])
        lines.append(
            f"| {seed} | {c['is_mean']:.2f} | {p['is_mean']:.2f} | {c['fid']:.1f} | "
            f"{p['fid']:.1f} | {100 * c['class_accuracy']:.1f} % | {rows} | "
            f"{c['run_time_s']:.0f} / {p['run_time_s']:.0f} |" if p else
            f"| {seed} | {c['is_mean']:.2f} | - | {c['fid']:.1f} | - | "
            f"{100 * c['class_accuracy']:.1f} % | {rows} | {c['run_time_s']:.0f} / - |")
    both = [s for s in conditional if s in plain]
    if both:
        mean = lambda runs, key: sum(runs[s][key] for s in both) / len(both)  # noqa: E731
        lines += ["", f"Mean over seeds {', '.join(map(str, sorted(both)))}: IS "
                  f"{mean(conditional, 'is_mean'):.2f} conditional vs "
                  f"{mean(plain, 'is_mean'):.2f} unconditional; FID "
                  f"{mean(conditional, 'fid'):.1f} vs {mean(plain, 'fid'):.1f}; the class "
                  f"asked for recognised in {100 * mean(conditional, 'class_accuracy'):.1f} % "
                  "of the samples."]
    return "\n".join(lines) + "\n"


def main():
    conditional = load(os.path.join(HERE, "quick_start_seeds.json"))
    plain = load(os.path.join(ROOT, "experiments", "quick_start_seeds", "results.json"))
    path = os.path.join(HERE, "RESULTS.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, _, rest = text.partition("## Quick start\n")
    _, _, tail = rest.partition("\n## ")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}## Quick start\n\n{table(conditional, plain)}\n## {tail}")
    print(table(conditional, plain))


if __name__ == "__main__":
    main()
