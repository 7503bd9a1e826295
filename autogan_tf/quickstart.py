"""The quick start: classifier -> search -> train -> evaluate -> export -> sample, in one call.

`quickstart` runs it at toy scale on the built-in ``shapes`` data (8 classes of
one shape on a tinted gradient) so that a new user sees every artifact of the
project, and a GAN that visibly learned, in about five minutes on two CPU
cores. Its search and training settings are the shipped flagfiles
``search_quick`` and ``train_quick`` (`autogan_tf.flagfiles`), so the same
settings run by hand with ``autogan-search --flagfile=search_quick``.

Every stage is resumable: rerunning with the same ``output_dir`` continues
where a killed run stopped (a SIGTERM/SIGINT stop returns ``preempted``).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from autogan_tf import errors, flagfiles, rundir, runlog
from autogan_tf.images import make_grid, save_png
from autogan_tf.metrics import classifiers

# The small classifier that scores the quick start (IS/FID and the search reward), at the
# quick start's 16x16: 99.9 % test accuracy on shapes in ~15-25 s on 2 cores. Trained on
# all 10,000 training images for 5 epochs, it is confident on held-out real images (their
# IS 7.6 of 8); 4 epochs on 4,000 images reached 99.3 % but gave them only IS 6.0, and
# every generator's IS shrank with that scale.
QUICK_CLASSIFIER = dict(epochs=5, max_train_images=None, width=24, image_size=16)
MIN_CLASSIFIER_ACCURACY = 0.95  # below this its IS and the search rewards mean little
EVAL_SAMPLES = 1000


class _Lap:
    """Seconds since the previous call: the stage durations the quick start prints."""

    def __init__(self):
        self.last = time.time()

    def __call__(self) -> str:
        now = time.time()
        seconds, self.last = now - self.last, now
        return f"{seconds:.0f} s"


def quick_settings():
    """``(search kwargs, train kwargs)`` of the quick start, from the shipped flagfiles."""
    from autogan_tf.config import SearchConfig, TrainConfig

    return (flagfiles.read("search_quick", SearchConfig),
            flagfiles.read("train_quick", TrainConfig))


def quick_configs(seed: int = 0, search_overrides=None, train_overrides=None,
                  conditional: bool = False):
    """``(search kwargs, train kwargs)`` of a quick start: `quick_settings` with the
    replaced settings and the seed, checked as configurations before minutes of work.

    Args:
      seed: the run's seed (wins over the overrides).
      search_overrides, train_overrides: fields replacing the shipped settings.
      conditional: search and train class-conditional models (``--conditional``).

    Returns:
      Keyword arguments of `config.SearchConfig` and `config.TrainConfig`; the quick
      start adds the classifier it trains (and the architecture it found, to train it).

    Raises:
      errors.UserError: the settings make no valid configuration (the message names the
        job and the command's flag that replaces its settings).
    """
    from autogan_tf.config import SearchConfig, TrainConfig

    search_kwargs, train_kwargs = quick_settings()
    search_kwargs.update(search_overrides or {}, seed=seed)
    train_kwargs.update(train_overrides or {}, seed=seed)
    if conditional:
        search_kwargs["conditional"] = train_kwargs["conditional"] = True
    for config_class, kwargs, flag in ((SearchConfig, search_kwargs, "--search_setting"),
                                       (TrainConfig, train_kwargs, "--train_setting")):
        try:
            config_class(**kwargs)  # the classifier is "auto" and the arch a stand-in here
        except errors.UserError as e:
            raise errors.UserError(f"{flag}: {e}") from None
    return search_kwargs, train_kwargs


def describe_overrides(search_overrides=None, train_overrides=None) -> str:
    """``"search: reward_bn=batch; train: max_iters=3000"``: the settings a quick start
    replaced (empty when none), for its headline."""
    parts = [f"{job}: " + ", ".join(f"{k}={v}" for k, v in overrides.items())
             for job, overrides in (("search", search_overrides), ("train", train_overrides))
             if overrides]
    return "; ".join(parts)


def reward_spread(search_dir: str) -> float:
    """Max - min of the controller-step rewards in the search's last iteration.

    It tells how far apart the rewards of the architectures the search sampled were, so the
    quick start can show whether the controller had anything to choose between.

    Args:
      search_dir: the search's run directory, holding ``search_log.jsonl``.

    Returns:
      The spread, 0.0 when no controller-step reward was logged.

    Raises:
      OSError: the directory holds no ``search_log.jsonl``.
    """
    path = os.path.join(search_dir, "search_log.jsonl")
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    steps = [r for r in records if "ctrl_step" in r and r.get("reward") is not None]
    if not steps:
        return 0.0
    last = max(r["iteration"] for r in steps)
    rewards = [r["reward"] for r in steps if r["iteration"] == last]
    return float(max(rewards) - min(rewards))


def real_image_scores(evaluator, image_size: int, num_images: int) -> dict:
    """IS and FID of the first ``num_images`` held-out (test split) ``shapes`` images.

    What a perfect generator would score with the same classifier and reference
    statistics: the scale the generator's figures are read against.

    Args:
      evaluator: the `metrics.evaluator.Evaluator` that scores the generator.
      image_size: the images' side.
      num_images: how many test images (the generator's sample count).

    Returns:
      The dict of `Evaluator.score_images` (``is_mean``, ``is_std``, ``fid``, ...).
    """
    from autogan_tf import data

    batches = data.make_uint8_dataset("shapes", 500, image_size, split="test",
                                      max_images=num_images)
    return evaluator.score_images(np.concatenate([b.numpy() for b in batches]))


def _search_layout(config) -> str:
    """How the search grows and what it leaves out, for the quick start's headline."""
    if config.mlas:
        layout = f"{config.num_cells} stages, one more cell each"
    else:
        layout = (f"all {config.num_cells} cells at once, at "
                  f"{config.resolution(config.num_cells - 1)} px")
    if config.excluded_choices:
        layout += f", without {config.excluded_choices}"
    return layout


def row_accuracies(evaluator, images, rows: int) -> list:
    """For a grid whose row ``r`` asked for class ``r``: the fraction of each row's images the
    classifier assigns to that class.

    Args:
      evaluator: the quick start's `metrics.evaluator.Evaluator`.
      images: uint8 ``[rows * n, H, W, 3]``, row by row.
      rows: the number of rows (= classes).
    """
    logits = np.asarray(evaluator.split_extractor(images)[0])
    predicted = np.argmax(logits, -1).reshape(rows, -1)
    return [float(np.mean(predicted[r] == r)) for r in range(rows)]


def quickstart(output_dir: str, seed: int = 0, search_overrides=None, train_overrides=None,
               echo=print, conditional: bool = False) -> dict:
    """Run the toy pipeline into ``output_dir``.

    Args:
      output_dir: where every artifact goes; an existing one is resumed.
      seed: seeds the classifier, the search and the training.
      search_overrides, train_overrides: keyword arguments replacing quick settings
        (`config.SearchConfig` / `config.TrainConfig` fields; ``--search_setting`` and
        ``--train_setting`` of the command). The seed, the classifier and the trained
        architecture are the run's own and win over them.
      echo: prints a stage's headline (the command line prints to the terminal).
      conditional: class-conditional models: the evaluation adds how often the classifier
        recognises the class asked for, and the sample grid has one row per class.

    Returns:
      The artifacts and figures, also written to ``OUTPUT_DIR/quickstart.json``; or
      ``{"preempted": True, ...}`` when a signal stopped the search or the training.

    Raises:
      errors.UserError: ``output_dir`` cannot be written, or a stage refuses its settings or
        its directory.
      rundir.RunDirLocked: another process runs a quick start in ``output_dir``.
    """
    with rundir.locked(output_dir, "--output_dir"):  # one quick start per directory
        return _run(output_dir, seed, search_overrides, train_overrides, echo, conditional)


def _run(output_dir, seed, search_overrides, train_overrides, echo, conditional=False) -> dict:
    """The body of `quickstart`, holding its directory."""
    from autogan_tf import config as config_lib
    from autogan_tf import training
    from autogan_tf.metrics.evaluator import Evaluator
    from autogan_tf.search import loop
    from autogan_tf.serving import client, export

    t0 = time.time()
    lap = _Lap()
    rundir.check_writable(output_dir)
    search_kwargs, train_kwargs = quick_configs(seed, search_overrides, train_overrides,
                                                conditional)
    changed = describe_overrides(search_overrides, train_overrides)
    if changed:
        echo(f"      settings replaced: {changed}")

    echo("[1/5] classifier that scores the samples (IS/FID) and the search rewards")
    classifier, accuracy = classifiers.train_small_classifier(
        "shapes", os.path.join(output_dir, "classifier.keras"), seed=seed, echo=echo,
        **QUICK_CLASSIFIER)
    if accuracy is not None:
        echo(f"      test accuracy {100 * accuracy:.1f} % on the 2,000 held-out shapes ({lap()})")
        if accuracy < MIN_CLASSIFIER_ACCURACY:
            echo(f"      warning: below {100 * MIN_CLASSIFIER_ACCURACY:.0f} %: IS, FID and "
                 "search rewards will be unreliable")

    search_config = config_lib.SearchConfig(**{**search_kwargs, "classifier": classifier})
    echo(f"[2/5] architecture search (weight-sharing supernet + LSTM controller, "
         f"{_search_layout(search_config)})")
    search_dir = os.path.join(output_dir, "search")
    result = loop.run_search(search_config, search_dir)
    if result.get("preempted"):
        return {"preempted": True, "stage": "search", **result}
    best = result["top_archs"][0]["arch_str"]
    spread = reward_spread(search_dir)
    echo(f"      best architecture {best} (reward {result['top_archs'][0]['reward']:.2f}; "
         f"rewards in the last iteration {spread:.2f} apart; {lap()})")

    train_dir = os.path.join(output_dir, "train")
    train_config = config_lib.TrainConfig(**{**train_kwargs, "arch": best, "classifier": classifier})
    echo(f"[3/5] training {best} from scratch")
    trained = training.train(train_config, train_dir)
    if trained.get("preempted"):
        return {"preempted": True, "stage": "train", **trained}

    echo(f"      {trained['step']} iterations ({lap()})")
    echo(f"[4/5] evaluating the EMA generator on {EVAL_SAMPLES} samples")
    generator, config, checkpoint = training.restore_generator(train_dir)
    # FID reference statistics of the real shapes, computed once and cached in train_dir.
    evaluator = Evaluator(classifier, dataset="shapes", image_size=config.image_size,
                          model_dir=train_dir)
    scores = evaluator(generator, EVAL_SAMPLES, seed=seed)
    real = real_image_scores(evaluator, config.image_size, EVAL_SAMPLES)
    scores.update({"checkpoint": checkpoint, "arch": best, "seed": seed,
                   "real_is_mean": real["is_mean"], "real_fid": real["fid"]})
    runlog.write_json_atomic(os.path.join(output_dir, "evaluation.json"), scores)
    echo(f"      IS {scores['is_mean']:.2f} +- {scores['is_std']:.2f} of 8 classes, "
         f"FID {scores['fid']:.1f} (held-out real images: IS {real['is_mean']:.2f}, "
         f"FID {real['fid']:.1f}) ({lap()})")
    if "class_accuracy" in scores:
        echo(f"      the classifier sees the class asked for in "
             f"{100 * scores['class_accuracy']:.1f} % of the {EVAL_SAMPLES} samples")

    echo("[5/5] exporting a SavedModel and sampling from it")
    export_base = os.path.join(output_dir, "export", "autogan")
    saved_model = export.export_generator(generator, export_base, 1, overwrite=True)
    classes = generator.num_classes
    # A conditional grid: row r asks for class r, 8 images each.
    labels = np.repeat(np.arange(classes), 8).tolist() if classes else None
    images = client.LocalGenerator(saved_model).generate(8 * (classes or 8), seed, labels=labels)
    grid_path = os.path.join(output_dir, "samples.png")
    save_png(grid_path, make_grid(np.asarray(images), 8))
    echo(f"      {saved_model}, {grid_path} ({lap()})")
    rows = row_accuracies(evaluator, images, classes) if classes else None
    if rows:
        echo(f"      one row per class; each row shows its class in "
             f"{', '.join(f'{round(8 * a)}/8' for a in rows)} images")
    artifacts = {
        "search_result": os.path.join(search_dir, rundir.SEARCH_RESULT),
        "best_arch": best, "search_reward_spread": round(spread, 3), "train_dir": train_dir,
        "evaluation": os.path.join(output_dir, "evaluation.json"),
        "is_mean": scores["is_mean"], "is_std": scores["is_std"], "fid": scores["fid"],
        "real_is_mean": real["is_mean"], "real_fid": real["fid"],
        "conditional": bool(classes), "class_accuracy": scores.get("class_accuracy"),
        "grid_row_accuracy": rows,
        "classifier": classifier, "classifier_accuracy": accuracy,
        "saved_model": saved_model, "samples": grid_path,
        "search_overrides": dict(search_overrides or {}),
        "train_overrides": dict(train_overrides or {}),
        "run_time_s": round(time.time() - t0, 1),
    }
    runlog.write_json_atomic(os.path.join(output_dir, "quickstart.json"), artifacts)
    return artifacts
