"""From a search's result to a chosen architecture: read its top architectures, train each
briefly, rank them by the scores of the trained generators.

The search ranks architectures by the reward of the shared supernet's weights; training
each candidate on its own for a short while and scoring it tells them apart better
before one is trained at full length (``autogan-derive``, then ``autogan-train``).
"""

from __future__ import annotations

import json
import os

from absl import logging

from autogan_tf import errors, rundir
from autogan_tf import search_space as ss


def read_top_archs(search_result: str) -> list[dict]:
    """The architectures of a search's ``search_result.json`` (its ``top_archs``, best reward
    first), or of ``autogan-derive``'s ``derive_result.json`` (its ``archs``, best first by
    the score it selected with), so a derived ranking can be trained as it is.

    Args:
      search_result: path of the file ``autogan-search`` or ``autogan-derive`` wrote.

    Returns:
      One dict per architecture: ``arch`` as the canonical string (``"1 0 1 1 ..."``)
      and ``reward``, the search's reward (None if the file has none).

    Raises:
      errors.UserError: the file is missing, not JSON, has no ``top_archs``, or holds
        an invalid architecture; the message names ``--search_result``.
    """
    try:
        with open(search_result, encoding="utf-8") as f:
            result = json.load(f)
        entries = result["archs"] if "archs" in result else result["top_archs"]
        return [{"arch": str(ss.parse_arch(entry["arch"])), "reward": entry.get("reward")}
                for entry in entries]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise errors.UserError(f"--search_result={search_result}: cannot read top_archs "
                               f"({e})") from None


def search_conditional(search_result: str) -> bool | None:
    """Whether the models behind ``search_result`` were class-conditional.

    ``autogan-search`` records its settings in ``search_result.json`` (``config``) and
    ``autogan-derive`` records ``conditional`` in ``derive_result.json``.

    Args:
      search_result: path of either file (already readable: see `read_top_archs`).

    Returns:
      True or False as recorded; None when the file does not say (an older result).
    """
    try:
        with open(search_result, encoding="utf-8") as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None
    recorded = result.get("conditional", (result.get("config") or {}).get("conditional"))
    return None if recorded is None else bool(recorded)


def carry_conditional(search_result: str, requested: bool | None) -> bool | None:
    """The ``conditional`` setting to train a search's architectures with.

    An architecture found by a class-conditional search was scored with the class
    reaching every cell, so by default it is trained that way too: a user who searched
    with ``--conditional`` and forgot it when training would otherwise get an
    unconditional model without a word.

    Args:
      search_result: the ``--search_result`` file.
      requested: ``--conditional`` as given on the command line; None when not given.

    Returns:
      ``requested`` when given (with a warning when it differs from the search's), else
      the search's own setting, or None when the file does not record it (keep the
      default).
    """
    searched = search_conditional(search_result)
    if requested is None:
        if searched:
            logging.info("--search_result=%s comes from a class-conditional search: training "
                         "with --conditional (--noconditional trains it unconditionally)",
                         search_result)
        return searched
    if searched is not None and requested != searched:
        logging.warning("--%sconditional: --search_result=%s comes from a%s search; training "
                        "its architectures %s as asked", "" if requested else "no",
                        search_result, " class-conditional" if searched else "n unconditional",
                        "class-conditionally" if requested else "unconditionally")
    return requested


def top_arch(search_result: str, rank: int = 0) -> str:
    """Architecture ``rank`` (0: the best) of a search's result, as a string.

    Args:
      search_result: path of ``search_result.json``.
      rank: index into its ``top_archs``.

    Returns:
      The canonical architecture string, ready for ``TrainConfig(arch=...)``.

    Raises:
      errors.UserError: unreadable file (see `read_top_archs`) or ``rank`` out of range.
    """
    top = read_top_archs(search_result)
    if not 0 <= rank < len(top):
        raise errors.UserError(f"--rank={rank} is out of range: {search_result} has "
                               f"{len(top)} architectures")
    return top[rank]["arch"]


def distinct_archs(top: list[dict]) -> list[dict]:
    """The first entry of each architecture in ``top``, each with its ``rank`` there.

    A search's top-K may hold one architecture several times (the official code keeps
    whatever its candidates were, and a controller that has converged samples the same
    one repeatedly); training it again with the same seed would only repeat the run.

    Args:
      top: `read_top_archs` entries, best first.

    Returns:
      The entries (copies, with ``rank`` added), best first, each architecture once.
    """
    seen, out = set(), []
    for rank, entry in enumerate(top):
        if entry["arch"] not in seen:
            seen.add(entry["arch"])
            out.append(dict(entry, rank=rank))
    return out


SELECT_BY = ("is", "fid")


def rank_key(row: dict, select_by: str = "is") -> tuple:
    """Sort key of a derived architecture, best first.

    Args:
      row: a result row with ``is_mean`` and ``fid`` (either may be None).
      select_by: ``"is"``, the paper's choice (section 3.4: the top architectures
        are trained from scratch and the one with the highest Inception Score is
        kept): highest IS first; ``"fid"``: lowest FID first. Rows without the
        chosen score come after, ordered by the other one.

    Returns:
      A tuple that sorts ascending from the best row to the worst.
    """
    is_key = -(row["is_mean"] if row["is_mean"] is not None else float("-inf"))
    fid_key = row["fid"] if row["fid"] is not None else float("inf")
    if select_by == "fid":
        return (row["fid"] is None, fid_key, is_key)
    return (row["is_mean"] is None, is_key, fid_key)


def derive(search_result: str, model_dir: str, base_config: dict, num_archs: int = 0,
           select_by: str = "is") -> dict:
    """Train each top architecture of a search briefly and rank them.

    Args:
      search_result: the search's ``search_result.json``.
      model_dir: each architecture trains in ``model_dir/rank_<i>`` (rerunning resumes);
        the ranking is written to ``model_dir/derive_result.json``.
      base_config: `config.TrainConfig` fields shared by every architecture (without
        ``arch``); ``classifier='auto'`` trains one small classifier, cached in model_dir.
        Each run is evaluated once, at its last iteration.
      num_archs: train only the first N distinct architectures (0: all); an architecture
        the top-K holds twice is trained once (`distinct_archs`).
      select_by: ``"is"`` (the paper's) or ``"fid"``: which score ranks them (`rank_key`).

    Returns:
      ``{"best": row, "archs": [row, ...]}`` sorted by `rank_key`, each row with
      ``rank`` (in the search's order), ``arch``, ``search_reward``, ``is_mean``,
      ``is_std`` and ``fid``; or ``{"preempted": True, "rank": i}`` when a signal
      stopped the training of rank i (rerunning resumes it and goes on).

    Raises:
      errors.UserError: a bad ``select_by`` or an unreadable ``search_result``
        (see `read_top_archs`).
      rundir.RunDirLocked: another process writes ``model_dir``.
    """
    if select_by not in SELECT_BY:
        raise errors.UserError(f"--select_by must be one of {SELECT_BY}, got {select_by!r}")
    classifier = base_config.get("classifier", "")
    if select_by == "is" and str(classifier).startswith("label_free:"):
        raise errors.UserError(f"--select_by=is: --classifier={classifier} is a label-free "
                               "network, whose outputs are not classes, so its IS means "
                               "nothing; use --select_by=fid")
    top = distinct_archs(read_top_archs(search_result))
    if num_archs:
        top = top[:num_archs]
    with rundir.locked(model_dir):  # one derive per directory (each run holds its own too)
        return _train_and_rank(top, model_dir, dict(base_config), select_by)


def _train_and_rank(top, model_dir, config, select_by) -> dict:
    """`derive`'s trainings and ranking, holding ``model_dir``."""
    from autogan_tf import config as config_lib
    from autogan_tf import runlog, training
    from autogan_tf.metrics import scorer

    bottom_width = config.get("bottom_width", config_lib.TrainConfig.bottom_width)
    config["classifier"] = scorer.resolve_classifier(
        config.get("classifier", "inception"), config.get("dataset", "cifar10"), model_dir,
        config.get("data_dir"), config.get("label_free_steps"),
        bottom_width * 2 ** ss.parse_arch(top[0]["arch"]).num_cells if top else None)
    rows = []
    for entry in top:
        rank = entry["rank"]
        max_iters = config.get("max_iters", config_lib.TrainConfig.max_iters)
        run_config = config_lib.TrainConfig(**dict(config, arch=entry["arch"],
                                                 eval_every=max_iters))
        result = training.train(run_config, os.path.join(model_dir, f"rank_{rank}"))
        if result.get("preempted"):
            return {"preempted": True, "rank": rank}
        rows.append({"rank": rank, "arch": entry["arch"], "search_reward": entry["reward"],
                     "is_mean": result.get("is_mean"), "is_std": result.get("is_std"),
                     "fid": result.get("fid")})
    rows.sort(key=lambda row: rank_key(row, select_by))
    out = {"best": rows[0] if rows else None, "archs": rows,
           "conditional": bool(config.get("conditional", False))}
    runlog.write_json_atomic(os.path.join(model_dir, rundir.DERIVE_RESULT), out)
    return out
