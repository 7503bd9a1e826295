"""The jobs of the command lines as Python functions, for notebooks and scripts.

Each function takes a run directory and settings, does what the matching
``autogan-*`` command does, and returns what it prints as a dict (or a path,
or a model). Settings are the fields of the job's configuration
(`SearchConfig` for `search`, `TrainConfig` for `train`), given as a config
object, a dict, keyword arguments, or a mix (keywords win); they have the
command's flag names and defaults, so ``autogan-train --gf_dim=64`` is
``api.train(dir, gf_dim=64)``. A directory that holds a run resumes it, as
the commands do.

    from autogan_tf import api

    result = api.search("/tmp/s", dataset="shapes", classifier="clf.keras", ...)
    api.train("/tmp/t", arch=result["top_archs"][0]["arch_str"], dataset="shapes", ...)
    generator = api.load_generator("/tmp/t")          # a Keras model: z -> images
    images = api.generate(generator, 16, seed=0)        # uint8 [16, H, W, 3]
    scores = api.evaluate("/tmp/t", num_samples=5000)   # IS, FID, KID
    api.supernet_rewards("/tmp/s", ["1 0 1 1 1 0 0 1 1 1 0 1 0 3"])  # the supernet's view
    path = api.export("/tmp/t", "/tmp/export/autogan")  # SavedModel for TF Serving

Errors in settings raise `autogan_tf.errors.UserError` subclasses (ValueError)
with the message the command would print.
"""

from __future__ import annotations

import dataclasses

from autogan_tf import errors

GENERATORS = ("ema", "raw")
CHECKPOINTS = ("latest", "best")


def _config(config_class, config, settings):
    """A ``config_class`` from a config object or dict plus keyword overrides."""
    if config is None:
        base = {}
    elif isinstance(config, (dict, config_class)):
        # A saved config.json (or to_dict) also holds why it computed in its precision.
        base = dict(config) if isinstance(config, dict) else config.to_dict()
        reason = base.pop("precision_reason", None)
    else:
        raise TypeError(f"config must be a {config_class.__name__}, a dict or None, "
                        f"got {type(config).__name__}")
    merged = {**base, **settings}
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(merged) - known)
    if unknown:
        raise errors.UserError(f"unknown {config_class.__name__} setting(s) {unknown}; "
                         f"known: {sorted(known)}")
    made = config_class(**merged)
    if base:
        made.keep_reason(base.get("precision"), reason)
    return made


def _check_choice(name, value, choices):
    if value not in choices:
        raise errors.UserError(f"{name} must be one of {choices}, got {value!r}")


def search(directory: str, config=None, *, progress: bool = True, strategy=None, **settings) -> dict:
    """Run or resume an architecture search in ``directory`` (``autogan-search``).

    Args:
        directory: the search directory (checkpoints, logs, ``search_result.json``).
        config: a `config.SearchConfig`, a dict of its fields, or None for the defaults;
            ``classifier="auto"`` trains a small classifier on the data set first, as the
            command does.
        progress: show a progress bar.
        strategy: a ``tf.distribute`` strategy (None: one device).
        **settings: `SearchConfig` fields overriding ``config``.

    Returns:
        The search result: ``top_archs`` (best first, each with ``arch_str`` and
        ``reward``) and the rest of ``search_result.json``; ``{"preempted": True}``
        when a signal stopped it (call again to resume).

    Raises:
        errors.UserError: an unknown setting, a bad value, or an unusable directory or data.
        TypeError: ``config`` is neither a `SearchConfig`, a dict nor None.
    """
    from autogan_tf import config as config_lib
    from autogan_tf.search import loop

    return loop.run_search(_config(config_lib.SearchConfig, config, settings), directory,
                           progress=progress, strategy=strategy)


def supernet_rewards(directory: str, archs, *, seeds=(0,), **settings) -> list[float]:
    """The rewards a search's supernet (at its last checkpoint) gives any architectures.

    The search only tells you about the architectures its controller sampled; this asks
    its shared weights about others too (e.g. to see how well the supernet's ranking
    predicts stand-alone training, the paper's section 4.3). Nothing is trained.

    Args:
        directory: a search directory (``autogan-search --model_dir``).
        archs: full architectures of the search's cell count, in any form ``--arch``
            takes (strings like "1 0 1 1 ...", aliases, lists of ints).
        seeds: noise seeds; each architecture's reward is the mean over them (more seeds,
            less noise).
        **settings: non-structural `SearchConfig` fields to change for this, e.g.
            ``reward_num_images=2000`` or another ``classifier``.

    Returns:
        One float per architecture, in order: its reward at the final stage (IS, or 1/FID
        with ``reward="fid"``), as the search computes it.

    Raises:
        errors.UserError: not a search directory, no checkpoint yet, a structural setting
            changed, an architecture that is not a full one of the search, or no seeds.
    """
    from autogan_tf import search_space as ss
    from autogan_tf.search import loop as search_lib

    if not seeds:
        raise errors.UserError("supernet_rewards: seeds must not be empty")
    found = search_lib.load_search(directory, **settings)
    num_cells, stage = found.config.num_cells, found.config.num_cells - 1
    vectors = [ss.parse_arch(arch, num_cells) for arch in archs]  # ArchError: a UserError
    reward = found.rewards.reward_fn
    return [sum(float(reward(found, arch.to_list(), stage, seed)) for seed in seeds) / len(seeds)
            for arch in vectors]


def train(directory: str, config=None, *, progress: bool = True, strategy=None, **settings) -> dict:
    """Train (or resume training) one architecture in ``directory`` (``autogan-train``).

    Args:
        directory: the run directory (checkpoints, logs, ``config.json``).
        config: a `config.TrainConfig`, a dict of its fields, or None for the defaults;
            ``classifier="auto"`` as in `search`.
        progress: show a progress bar.
        strategy: a ``tf.distribute`` strategy (None: one device).
        **settings: `TrainConfig` fields overriding ``config`` (e.g. ``arch``, ``max_iters``).

    Returns:
        The last logged values (losses, IS/FID when evaluated) with ``step``.

    Raises:
        errors.UserError: an unknown setting, a bad value, or an unusable directory or data.
        TypeError: ``config`` is neither a `TrainConfig`, a dict nor None.
    """
    from autogan_tf import config as config_lib
    from autogan_tf import training

    return training.train(_config(config_lib.TrainConfig, config, settings), directory,
                          progress=progress, strategy=strategy)


def load_generator(directory: str, *, generator: str = "ema", checkpoint: str = "latest"):
    """The trained generator of a run as a Keras model mapping ``z`` to images in [-1, 1].

    Args:
        directory: a training run directory (``train`` / ``autogan-train --model_dir``,
            or one written by ``autogan-import``).
        generator: ``"ema"`` (the moving average, what the paper evaluates) or ``"raw"``.
        checkpoint: ``"latest"`` or ``"best"`` (the best-FID checkpoint).

    Returns:
        A built `models.DerivedGenerator`; call it as ``model(z, training=False)``
        with ``z`` of shape ``[n, model.latent_dim]``.

    Raises:
        errors.UserError: an unknown ``generator`` or ``checkpoint``, a directory that is not
            a training run, or no such checkpoint.
    """
    from autogan_tf import training

    _check_choice("generator", generator, GENERATORS)
    _check_choice("checkpoint", checkpoint, CHECKPOINTS)
    model, _, _ = training.restore_generator(directory, checkpoint, ema=generator == "ema")
    return model


def generate(generator, num_images: int, seed: int = 0, batch_size: int = 100, labels=None):
    """``num_images`` uint8 images ``[n, H, W, 3]`` from a generator, batch by batch.

    The images a seed names (`sampling`): the same here at any ``batch_size``, in
    ``autogan-evaluate`` and from the SavedModel's ``generate`` signature.

    Args:
        generator: a generator model with a ``latent_dim`` attribute (`load_generator`).
        num_images: how many images (at least 1).
        seed: the noise seed.
        batch_size: images generated per call of the model.
        labels: a conditional generator's class of each image (``num_images`` ints); None
            asks for classes 0, 1, 2, ... in turn. Unconditional generators take none.

    Returns:
        A numpy uint8 array ``[num_images, H, W, 3]``.

    Raises:
        errors.UserError: ``num_images`` or ``batch_size`` is below 1, or labels out of
            range, not one per image, or given to an unconditional generator.
    """
    from autogan_tf import sampling

    for name, value in (("num_images", num_images), ("batch_size", batch_size)):
        if value < 1:
            raise errors.UserError(f"{name} must be positive, got {value}")
    if labels is not None and len(labels) != num_images:
        raise errors.UserError(f"labels: one class per image: {num_images} images, got "
                               f"{len(labels)} labels")
    return sampling.generate(generator, num_images, seed, batch_size, labels=labels)


def evaluate(directory: str, num_samples: int = 50_000, *, generator: str = "ema",
             checkpoint: str = "latest", classifier: str | None = None,
             fid_stats: str | None = None, seed: int = 0, batch_size: int = 100) -> dict:
    """IS, FID and KID of a run's generator (``autogan-evaluate``; also written to
    ``directory/eval_<checkpoint>.json``).

    Args:
        directory: a training run directory.
        num_samples: generated images (the paper: 50,000; at least 10).
        generator, checkpoint: which weights, as in `load_generator`.
        classifier: ``"inception"`` or a ``.keras`` classifier; default: the run's.
        fid_stats: reference statistics ``.npz``; default: the run's, or computed
            from its data set and cached in ``directory``.
        seed: seed of the evaluation noise.
        batch_size: generation and feature batch size.

    Returns:
        ``{"is_mean", "is_std", "fid", "kid_mean", "kid_std", "num_samples", "classifier",
        "checkpoint", ...}`` (KID None when the reference statistics keep no features).
    """
    from autogan_tf import training

    _check_choice("generator", generator, GENERATORS)
    _check_choice("checkpoint", checkpoint, CHECKPOINTS)
    return training.evaluate_run(directory, checkpoint, ema=generator == "ema",
                                 num_samples=num_samples, batch_size=batch_size, seed=seed,
                                 classifier=classifier, fid_stats=fid_stats)


def export(directory: str, export_dir: str, version: int = 1, *, generator: str = "ema",
           checkpoint: str = "latest", max_batch: int = 64, overwrite: bool = False) -> str:
    """Export a run's generator as a versioned SavedModel for TF Serving (``autogan-export``).

    Args:
        directory: a training run directory.
        export_dir: the model's base directory; the SavedModel goes to ``export_dir/version``.
        version: the TF Serving version number.
        generator, checkpoint: which weights, as in `load_generator`.
        max_batch: largest batch the ``generate`` signature serves.
        overwrite: replace an existing version directory.

    Returns:
        The SavedModel directory.
    """
    from autogan_tf.serving import export as export_lib

    model = load_generator(directory, generator=generator, checkpoint=checkpoint)
    return export_lib.export_generator(model, export_dir, version, max_batch=max_batch,
                                       overwrite=overwrite)
