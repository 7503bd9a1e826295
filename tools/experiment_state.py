"""Carry a long experiment's finished steps to another machine, through the repository.

The experiments under ``experiments/`` skip a step whose result file exists in their work
directory (a search's ``search_result.json``, a derive's ``derive_result.json``, a
stand-alone run's ``eval_final.json``) and resume a killed one from its checkpoints. The
checkpoints are too large to commit, but the result files and the scorer are small: this
tool copies those, and only those, into a folder that can be committed, and back into a
new work directory, so a run begun on one machine goes on from its last finished step on
another (the steps in flight start again from scratch).

    python tools/experiment_state.py save WORK experiments/conditional/state/search
    python tools/experiment_state.py restore experiments/conditional/state/search WORK

``save`` copies, keeping their paths below WORK: every step's result file
(`RESULT_NAMES`), the log and settings beside a finished search (its controller curves,
the reward it chose), and
in the work directory itself the scorers (``classifier.keras``, the label-free networks),
the FID statistics and the JSON files (summaries, cached proxy rewards): the later steps
are then scored by the very networks the earlier ones were. Nothing larger than ``--max_mb`` is copied. ``restore`` never overwrites a file
the work directory already has.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import sys

RESULT_NAMES = ("search_result.json", "derive_result.json", "eval_final.json")
# In the work directory itself: the scorers, the FID statistics and the JSON caches
# (a classifier's summary, the proxy rewards of the label-free experiment, results).
TOP_LEVEL_PATTERNS = ("*.json", "classifier.keras", "label_free_*.keras", "fid_stats*.npz")
SKIPPED_DIRS = ("cifar10", "checkpoints", "logs", "data")  # data and what cannot travel


def wanted(relative: str, names_here: set[str]) -> bool:
    """Whether ``save`` keeps the file at ``relative`` (a path below the work directory).

    Args:
      relative: the file's path relative to the work directory.
      names_here: the names of the files in the same folder (a search log is kept only
        beside a finished search's result).
    """
    name = os.path.basename(relative)
    if name in RESULT_NAMES:
        return True
    if name in ("search_log.jsonl", "search_config.json"):  # a finished search's log, settings
        return "search_result.json" in names_here
    top_level = os.path.dirname(relative) == ""
    return top_level and any(fnmatch.fnmatch(name, p) for p in TOP_LEVEL_PATTERNS)


def save(work: str, dest: str, max_mb: float = 20.0) -> list[str]:
    """Copy ``work``'s finished results and scorer to ``dest``; return the relative paths.

    Args:
      work: the experiment's work directory.
      dest: the folder to copy into (created; files there are replaced by newer copies).
      max_mb: files larger than this many megabytes are left out, with a message.
    """
    if not os.path.isdir(work):
        raise SystemExit(f"experiment_state: WORK={work} is not a directory")
    copied = []
    for folder, dirs, files in os.walk(work):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        names = set(files)
        for name in sorted(files):
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, work)
            if not wanted(relative, names):
                continue
            if os.path.getsize(path) > max_mb * 1e6:
                print(f"experiment_state: left out {relative} "
                      f"({os.path.getsize(path) / 1e6:.1f} MB > --max_mb={max_mb})")
                continue
            target = os.path.join(dest, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(path, target)
            copied.append(relative)
    return copied


def restore(source: str, work: str) -> list[str]:
    """Copy ``source``'s files into ``work`` where ``work`` lacks them; return those copied.

    Args:
      source: a folder ``save`` wrote.
      work: the experiment's work directory (created).
    """
    if not os.path.isdir(source):
        raise SystemExit(f"experiment_state: SOURCE={source} is not a directory")
    copied = []
    for folder, _, files in os.walk(source):
        for name in sorted(files):
            relative = os.path.relpath(os.path.join(folder, name), source)
            target = os.path.join(work, relative)
            if os.path.exists(target):
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(os.path.join(folder, name), target)
            copied.append(relative)
    return copied


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("save", help="copy WORK's finished results into DEST")
    s.add_argument("work")
    s.add_argument("dest")
    s.add_argument("--max_mb", type=float, default=20.0)
    r = sub.add_parser("restore", help="copy SOURCE's files into WORK where missing")
    r.add_argument("source")
    r.add_argument("work")
    args = parser.parse_args(argv)
    if args.command == "save":
        copied = save(args.work, args.dest, args.max_mb)
        print(f"saved {len(copied)} files from {args.work} to {args.dest}")
    else:
        copied = restore(args.source, args.work)
        print(f"restored {len(copied)} files from {args.source} into {args.work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
