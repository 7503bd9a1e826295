"""Which network a run scores with: ``--classifier`` made concrete.

``inception`` and ``.keras`` files are used as they are; ``auto`` (a small classifier of
the data set's classes, `classifiers.train_small_classifier`) and ``label_free:KIND`` (a
network learnt from the data set's images alone, `label_free`) are trained on the run's
data set once and cached in its directory, so that a resumed run scores with the same
network.
"""

from __future__ import annotations

import os

from autogan_tf import data, distribute, errors, rundir
from autogan_tf.metrics import classifiers, label_free


def check_auto_classifier(num_classes: int, dataset: str) -> None:
    """Refuse ``--classifier=auto`` on a data set of one class: a classifier trained to
    tell one class from nothing learns nothing (its loss is 0 from the start), so its
    features measure nothing either, for IS or for FID/KID.

    Raises:
      errors.UserError: ``num_classes`` is below 2.
    """
    if num_classes < 2:
        raise errors.UserError(
            f"--classifier=auto: --dataset={dataset} has {num_classes} class, so a classifier "
            "trained on it learns nothing and scores nothing; use --classifier=label_free:contrastive "
            "(a network learnt from the images without labels) with --reward=kid, or "
            "--reward=auto, or give the folder class sub-folders")


def trained_for_run(classifier: str) -> bool:
    """Whether a ``--classifier`` value names a network the run trains on its data set
    (``'auto'`` or ``'label_free:KIND'``), which `resolve_classifier` replaces by a path."""
    return classifier == "auto" or label_free.kind_of(classifier) is not None


def resolve_classifier(classifier: str, dataset: str, model_dir: str, data_dir=None,
                       label_free_steps: int | None = None,
                       image_size: int | None = None) -> str:
    """The classifier a run scores with: ``'auto'`` and ``'label_free:KIND'`` become networks
    trained on ``dataset``.

    Args:
      classifier: a ``--classifier`` value: ``'inception'``, a ``.keras`` file (both
        returned as they are), ``'auto'`` (a small classifier of the data set's classes) or
        ``'label_free:KIND'`` (a network learnt from its images alone, `label_free`).
      dataset, data_dir: the run's data set, which the network learns.
      model_dir: the run directory; the network is cached there (``classifier.keras``,
        ``label_free_KIND.keras``) so that a resumed run scores with the same network.
      label_free_steps: a label-free network's training steps (None: `label_free.train`'s).
      image_size: the side the network sees, the run's resolution (None: the data set's
        native resolution, which for a folder of photographs can be thousands of pixels).

    Returns:
      The ``--classifier`` value to use (for a trained network, its ``.keras`` path).

    Raises:
      errors.UserError: an unknown label-free kind, or ``auto`` on a one-class data set
        (`check_auto_classifier`).
    """
    kind = label_free.kind_of(classifier)
    if classifier != "auto" and kind is None:
        return classifier
    if kind is None:
        check_auto_classifier(data.num_classes(dataset, data_dir), dataset)
    name = rundir.CLASSIFIER if kind is None else label_free.file_name(kind)
    cached = os.path.join(model_dir, name)
    if not (os.path.exists(cached) or distribute.is_chief()):
        # Another worker of a multi-worker job, before the chief has one: train its own in
        # its scratch directory (never into model_dir). Scores stay the same on every
        # worker: the features of each replica's share are gathered from all of them.
        cached = os.path.join(distribute.worker_dir(model_dir), name)
    if kind is not None:
        steps = {} if label_free_steps is None else {"steps": label_free_steps}
        return label_free.network(kind, dataset, cached, data_dir=data_dir,
                                  image_size=image_size, **steps)[0]
    path, _ = classifiers.train_small_classifier(dataset, cached, data_dir=data_dir,
                                                 image_size=image_size)
    return path
