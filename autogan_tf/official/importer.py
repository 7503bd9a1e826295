"""Turn an official AutoGAN PyTorch checkpoint into a run directory of this package.

`import_checkpoint("autogan_cifar10_a.pth", "autogan_cifar10_a", 256, 4, "runs/a")`
reads the file without PyTorch (`autogan_tf.official.pth`), picks the generator
weights the way the official ``test.py`` does, maps them onto a
`DerivedGenerator` with the package's one official <-> Keras mapping
(`autogan_tf.official.weights`, which checks every tensor's name and shape),
and writes a directory laid out like an ``autogan-train`` run:

    MODEL_DIR/config.json          the architecture and sizes (`config.TrainConfig`)
    MODEL_DIR/checkpoints/ckpt-0*  the weights as both ``generator`` and ``ema_generator``
    MODEL_DIR/import.json          where they came from (file, SHA-256, which state dict)

so that ``autogan-evaluate``, ``autogan-export`` (then ``autogan-sample
--saved_model``) and `training.restore_generator` accept it. The official
checkpoints hold the EMA weights as ``avg_gen_state_dict``; they become both
the raw and the EMA generator here, since an imported model has no training
history to tell them apart.

Everything is checked before anything is written, and the directory is built
under a temporary name beside ``model_dir`` and renamed into place at the end:
a refused import or a crash leaves no ``model_dir`` behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile

import numpy as np

from autogan_tf import errors, rundir
from autogan_tf.official import pth, weights

# Where the official code keeps generator weights, in the order its test.py tries them
# (a bare state dict is the fallback; gen_state_dict is the raw, non-EMA generator).
STATE_DICT_KEYS = ("avg_gen_state_dict", "gen_state_dict")
BARE = "state_dict"  # label of a file that is the generator state dict itself
IMPORT_FILE = "import.json"


class ImportCheckpointError(errors.UserError):
    """An official checkpoint that cannot become a run directory (and nothing was written)."""


@dataclasses.dataclass
class ImportResult:
    """What `import_checkpoint` did: the run directory and the weights it took."""

    model_dir: str
    state_dict: str  # "avg_gen_state_dict", "gen_state_dict" or BARE
    num_tensors: int


def select_state_dict(obj, path: str):
    """The generator state dict of a loaded checkpoint, and which one it is.

    The choice follows the official ``test.py``: ``avg_gen_state_dict`` if present (the
    EMA weights the paper evaluates), else ``gen_state_dict``, else the object itself when
    it is a bare state dict (names -> arrays).

    Args:
      obj: what `pth.load` returned.
      path: the file, for messages.

    Returns:
      ``(state_dict, label)``; the label is the key used, or `BARE`.

    Raises:
      ImportCheckpointError: ``obj`` is not a dict, the chosen entry is not a state dict of
        arrays, or neither key nor a bare state dict is there.
    """
    if not isinstance(obj, dict):
        raise ImportCheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict "
                                    "or a training checkpoint")
    for key in STATE_DICT_KEYS:
        if key in obj:
            state = obj[key]
            if not _is_state_dict(state):
                raise ImportCheckpointError(f"{path}: {key} is not a state dict of tensors")
            return state, key
    if _is_state_dict(obj):
        return obj, BARE
    keys = ", ".join(sorted(str(k) for k in obj)[:8])
    raise ImportCheckpointError(
        f"{path}: neither a generator state dict nor a checkpoint with "
        f"{' or '.join(STATE_DICT_KEYS)} (top-level keys: {keys})")


def _is_state_dict(obj) -> bool:
    return (isinstance(obj, dict) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items()))


STAGING = ".importing-"  # a staging folder inside the run directory, moved into place last


def _leftovers(model_dir: str) -> list[str]:
    """What ``model_dir`` holds besides its lock and an interrupted import's staging."""
    if not os.path.isdir(model_dir):
        return []
    return [n for n in os.listdir(model_dir)
            if n != rundir.LOCK and not n.startswith(STAGING)]


def _check_model_dir(model_dir: str) -> str:
    """``model_dir`` must be new (or an empty directory): an import never mixes runs."""
    if not model_dir:
        raise ImportCheckpointError("--model_dir is required")
    model_dir = os.path.abspath(model_dir)
    if os.path.exists(model_dir) and (not os.path.isdir(model_dir) or _leftovers(model_dir)):
        raise ImportCheckpointError(f"--model_dir={model_dir} already exists and is not an "
                                    "empty directory; give a new one")
    return model_dir


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _build_generator(state, path, arch, gf_dim, bottom_width, latent_dim):
    """A `DerivedGenerator` of ``arch`` holding ``state`` (mapping checked tensor by tensor)."""
    from autogan_tf import models

    generator = models.DerivedGenerator(arch, gf_dim, latent_dim, bottom_width)
    try:
        weights.load_generator_state(generator, state)  # layout detected from the names
    except weights.WeightMappingError as e:
        raise ImportCheckpointError(
            f"{path}: {_shorten(str(e))} (with --arch={arch} --gf_dim={gf_dim} "
            f"--bottom_width={bottom_width} --latent_dim={latent_dim}; "
            f"{_size_hint(state, gf_dim, bottom_width, latent_dim)})") from None
    return generator


def _shorten(message: str, limit: int = 600) -> str:
    """A wrong --gf_dim mismatches every tensor: keep the first ones of the list."""
    return message if len(message) <= limit else message[:limit].rsplit(";", 1)[0] + "; ..."


def _size_hint(state, gf_dim, bottom_width, latent_dim) -> str:
    """Which flag looks wrong, from the sizes the file's own tensors imply."""
    weight, head = state.get("l1.weight"), state.get("to_rgb.2.weight")
    if weight is None or head is None or weight.ndim != 2 or head.ndim != 4:
        return "check --arch and the sizes"
    found = (head.shape[1], int(round((weight.shape[0] / max(head.shape[1], 1)) ** 0.5)),
             weight.shape[1])
    if found == (gf_dim, bottom_width, latent_dim):
        return "the sizes fit the file: check --arch (the official --gen_model or --arch)"
    return ("the file's tensors suggest --gf_dim={} --bottom_width={} --latent_dim={}"
            .format(*found))


def _config(arch, gf_dim, bottom_width, latent_dim, dataset):
    from autogan_tf import config as config_lib
    from autogan_tf import search_space as ss

    try:
        config = config_lib.TrainConfig(arch=arch, gf_dim=gf_dim, bottom_width=bottom_width,
                                      latent_dim=latent_dim, dataset=dataset or "cifar10")
    except ss.ArchError as e:
        raise ImportCheckpointError(f"--arch: {e}") from None
    except ValueError as e:  # names its flag
        raise ImportCheckpointError(str(e)) from None
    if dataset is None and config.image_size == 48:
        config.dataset = "stl10"  # the paper's STL-10 models are 48 px
    return config


def _write_run(directory, generator, config, provenance):
    """config.json, the checkpoint (as raw and EMA generator) and import.json."""
    import tensorflow as tf

    from autogan_tf import checkpointing, runlog

    runlog.write_json_atomic(os.path.join(directory, rundir.TRAIN_CONFIG), config.to_dict())
    ckpt = tf.train.Checkpoint(generator=generator, ema_generator=generator)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(directory, rundir.CHECKPOINTS),
                                         max_to_keep=None)
    checkpointing.save_checkpoint(manager, checkpoint_number=0)
    runlog.write_json_atomic(os.path.join(directory, IMPORT_FILE), provenance)
    _verify(directory, generator)


def _chmod_default(directory):
    """mkdtemp makes 0700 directories; give the run the permissions of a normal mkdir."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(directory, 0o777 & ~umask)


def _verify(directory, generator):
    """Restore the written run as the other commands will and compare one batch."""
    import tensorflow as tf

    from autogan_tf import training

    restored, _, _ = training.restore_generator(directory)
    z = tf.random.stateless_normal([2, generator.latent_dim], [0, 1])
    a = generator(z, training=False).numpy()
    b = restored(z, training=False).numpy()
    if not np.array_equal(a, b):
        raise ImportCheckpointError(f"the written run in {directory} does not restore the "
                                    "imported weights (internal error)")


def import_checkpoint(path: str, arch, gf_dim: int, bottom_width: int, model_dir: str,
                      latent_dim: int = 128, dataset: str | None = None,
                      echo=print) -> ImportResult:
    """Convert an official AutoGAN ``.pth`` file into a run directory.

    The run directory is held for the import (`rundir.locked`) and written in a staging
    folder that is moved into place once complete and verified (``config.json`` last), so
    a failure leaves no run behind; the other commands
    (``autogan-evaluate``, ``autogan-export``, ...) then use it as a run of their own.

    Args:
      path: the official checkpoint: a generator state dict, or a training
        checkpoint holding ``avg_gen_state_dict`` (preferred) or ``gen_state_dict``.
      arch: the architecture it was trained with (alias such as
        ``autogan_cifar10_a``, or the official vector).
      gf_dim: the official ``--gf_dim``.
      bottom_width: the official ``--bottom_width`` (4 for CIFAR-10, 6 for the 48 px
        STL-10 model).
      model_dir: the run directory to create; must not exist (or be empty).
      latent_dim: the official ``--latent_dim``.
      dataset: recorded in config.json for evaluation's reference statistics
        (default: stl10 for 48 px images, else cifar10).
      echo: called with one line saying which weights were used (None: quiet).

    Returns:
      An `ImportResult`.

    Raises:
      ImportCheckpointError: a bad ``model_dir``, size, architecture or state dict (one
        line naming the file, the tensor or the flag); nothing is written.
      pth.PthError: the file cannot be read safely.
    """
    path = os.fspath(path)
    model_dir = _check_model_dir(model_dir)
    config = _config(arch, gf_dim, bottom_width, latent_dim, dataset)  # validates the sizes
    state, label = select_state_dict(pth.load(path), path)
    generator = _build_generator(state, path, config.arch, gf_dim, bottom_width, latent_dim)
    provenance = {"source": os.path.abspath(path), "sha256": _sha256(path),
                  "state_dict": label, "layout": weights.detect_generator_layout(state),
                  "num_tensors": len(state), **_sizes(config)}
    with rundir.locked(model_dir):
        _check_model_dir(model_dir)  # again, now that no other import can write it
        _write_atomically(model_dir, lambda staging: _write_run(staging, generator, config,
                                                                provenance))
    if echo is not None:
        what = "the generator state dict" if label == BARE else label
        echo(f"imported {what} of {path} ({len(state)} tensors) into {model_dir}")
    return ImportResult(model_dir, label, len(state))


def _sizes(config) -> dict:
    return {k: getattr(config, k) for k in ("arch", "gf_dim", "bottom_width", "latent_dim")}


def _write_atomically(model_dir: str, write):
    """Run ``write(staging)`` on a fresh folder inside ``model_dir``, then move its entries up,
    ``config.json`` last.

    A failure (or an interrupt) removes the staging folder; a kill during the moves leaves
    no ``config.json``, which every reader requires, and the staging folders of earlier
    interrupted imports are removed here (the caller holds the directory's lock).
    """
    for name in os.listdir(model_dir):
        if name.startswith(STAGING):
            shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)
    staging = tempfile.mkdtemp(prefix=STAGING, dir=model_dir)
    try:
        _chmod_default(staging)
        write(staging)
        for name in sorted(os.listdir(staging), key=lambda n: n == rundir.TRAIN_CONFIG):
            os.rename(os.path.join(staging, name), os.path.join(model_dir, name))
        os.rmdir(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
