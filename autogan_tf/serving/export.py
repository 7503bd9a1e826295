"""Export a trained generator as a versioned SavedModel that TF Serving loads as is.

Layout written by `export_generator(generator, "models/autogan", 3)`::

    models/autogan/3/saved_model.pb, variables/...
    models/autogan/3/assets.extra/tf_serving_warmup_requests

Signatures (the serving contract; `autogan_tf/cli/sample.py` and `serving.py` rely on it):

* ``serving_default``: ``z`` float32 ``[batch, latent_dim]`` -> ``images`` uint8
  ``[batch, H, W, 3]``.
* ``generate``: scalar ``num_samples`` int32 and ``seed`` int64 -> ``images``
  uint8 and ``png_bytes`` (one encoded PNG per image). ``z`` is the seed's noise
  (`sampling.latents`), so a seed names a fixed list of images, the same as
  `api.generate` and the evaluation draw: image ``i`` does not depend on
  ``num_samples``. The ``_bytes`` suffix is what makes
  TF Serving's REST API return the PNGs base64-encoded (``{"b64": ...}``);
  without it a raw PNG would be written into a JSON string.

A class-conditional generator (``--conditional``) is exported with one more input in
each, ``labels`` int32 ``[batch]``, the class of each image:

* ``serving_default``: ``z`` and ``labels`` (``0 .. classes - 1``, one per row of ``z``);
* ``generate``: ``num_samples``, ``seed`` and ``labels`` (``num_samples`` of them); a label
  of -1 asks for a random class, drawn from the seed (`sampling.random_labels`).

An unconditional export keeps the signatures above exactly.

Both signatures reject a batch above ``max_batch``, a negative ``num_samples``,
a ``z`` of the wrong width or with non-finite values, and labels out of range or of the
wrong length, with an InvalidArgument error (TF Serving: gRPC INVALID_ARGUMENT, REST 400)
instead of running out of memory or failing deep inside a matmul.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

from autogan_tf import errors, sampling
from autogan_tf.images import to_uint8

SERVING_DEFAULT = "serving_default"
GENERATE = "generate"
IMAGES = "images"
PNG = "png_bytes"
Z = "z"
LABELS = "labels"
NUM_SAMPLES = "num_samples"
SEED = "seed"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


class ExportError(errors.UserError):
    """A bad export request: bad version, existing target, generator contract broken."""


def _check_version(version) -> int:
    # TF Serving only picks up all-digit directory names.
    if isinstance(version, bool) or not isinstance(version, (int, np.integer, str)):
        raise ExportError(f"--version must be a positive integer, got {version!r}")
    text = str(version)
    if not text.isdigit() or int(text) < 1:
        raise ExportError(f"--version must be a positive integer, got {version!r}")
    return int(text)


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ExportError(f"--{name} must be a positive integer, got {value!r}")
    return int(value)


def _resolve_latent_dim(generator, latent_dim):
    own = getattr(generator, "latent_dim", None)
    if latent_dim is None:
        if own is None:
            raise ExportError("the generator has no `latent_dim` attribute; pass latent_dim=")
        latent_dim = own
    latent_dim = _check_positive("latent_dim", latent_dim)
    if own is not None and int(own) != latent_dim:
        raise ExportError(f"latent_dim={latent_dim} disagrees with generator.latent_dim={own}")
    return latent_dim


def _num_classes(generator) -> int:
    return int(getattr(generator, "num_classes", 0) or 0)


def _image_shape(generator, latent_dim):
    """Run the generator once (this also builds it) and check the output contract."""
    import tensorflow as tf

    labels = {"labels": tf.zeros([2], tf.int32)} if _num_classes(generator) else {}
    out = generator(tf.zeros([2, latent_dim]), training=False, **labels)
    shape = tuple(out.shape)
    if len(shape) != 4 or shape[0] != 2 or shape[-1] != 3 or out.dtype != tf.float32:
        raise ExportError("the generator must map z [B, latent_dim] to float32 images "
                          f"[B, H, W, 3]; got {out.dtype.name} {shape}")
    return shape[1:]


class _Endpoints:
    """The traced serving functions; one instance per export, closing over the generator.

    Args:
      generator: the Keras generator, mapping float32 ``z`` to images in [-1, 1].
      latent_dim: the width of ``z``.
      max_batch: the largest batch a request may ask for.
    """

    def __init__(self, generator, latent_dim, max_batch, image_shape):
        self.generator = generator
        self.latent_dim = latent_dim
        self.max_batch = max_batch
        self.image_shape = tuple(image_shape)
        self.num_classes = _num_classes(generator)

    def _guard_labels(self, labels, rows, lowest=0):
        """Checks of a conditional export's labels: one per row, each in ``lowest ..
        num_classes - 1`` (``lowest`` -1 lets ``generate`` ask for random classes)."""
        import tensorflow as tf

        k = self.num_classes
        allowed = f"{lowest}..{k - 1}" + (" (-1: a random class)" if lowest < 0 else "")
        return [
            tf.debugging.assert_equal(tf.size(labels), tf.cast(rows, tf.int32),
                                      message="labels must hold one class per image"),
            tf.debugging.assert_greater_equal(labels, lowest,
                                              message=f"labels must be in {allowed}"),
            tf.debugging.assert_less(labels, k, message=f"labels must be in {allowed}: the "
                                                        f"model has {k} classes"),
        ]

    def _guard_batch(self, batch, what):
        import tensorflow as tf

        return [
            tf.debugging.assert_non_negative(batch, message=f"{what} must be >= 0"),
            tf.debugging.assert_less_equal(
                batch, tf.cast(self.max_batch, batch.dtype),
                message=f"{what} exceeds the exported maximum batch of {self.max_batch}"),
        ]

    def _images(self, z, labels=None):
        # The static [H, W, 3] in the signature's output spec, and a promise kept for an
        # empty batch too: [0, H, W, 3], whatever the generator's ops make of zero rows.
        import tensorflow as tf

        extra = {"labels": labels} if self.num_classes else {}
        return tf.ensure_shape(to_uint8(self.generator(z, training=False, **extra)),
                               (None, *self.image_shape))

    def serving_default(self, z, labels=None):
        """The ``serving_default`` signature: uint8 images from the caller's ``z``.

        Args:
          z: float32 ``[batch, latent_dim]``, finite, with a batch of at most ``max_batch``.
          labels: a conditional export's int32 ``[batch]`` classes, each in
            ``0 .. num_classes - 1``.

        Returns:
          ``{"images": uint8 [batch, H, W, 3]}``; a failed check raises InvalidArgument in the
          graph.
        """
        import tensorflow as tf

        checks = self._guard_batch(tf.shape(z)[0], "the batch of z")
        checks.append(tf.debugging.assert_equal(
            tf.shape(z)[1], self.latent_dim,
            message=f"z must have shape [batch, {self.latent_dim}]"))
        checks.append(tf.debugging.assert_all_finite(z, "z must be finite"))
        if self.num_classes:
            checks += self._guard_labels(labels, tf.shape(z)[0])
        with tf.control_dependencies(checks):
            z = tf.identity(z)
            labels = None if labels is None else tf.identity(labels)
        return {IMAGES: self._images(z, labels)}

    def generate(self, num_samples, seed, labels=None):
        """The ``generate`` signature: images from a seed, also encoded as PNG.

        Args:
          num_samples: int32 scalar, between 0 and ``max_batch``.
          seed: int64 scalar naming the noise (`sampling.latents`).
          labels: a conditional export's int32 ``[num_samples]`` classes; -1 asks for a
            random one (`sampling.random_labels` of the seed).

        Returns:
          ``{"images": uint8 [num_samples, H, W, 3], "png_bytes": string [num_samples]}``.
        """
        import tensorflow as tf

        checks = self._guard_batch(num_samples, NUM_SAMPLES)
        if self.num_classes:
            checks += self._guard_labels(labels, num_samples, lowest=-1)
        with tf.control_dependencies(checks):
            num_samples = tf.identity(num_samples)
        if self.num_classes:
            drawn = sampling.random_labels(seed, 0, num_samples, self.num_classes)
            labels = tf.where(labels < 0, drawn, labels)
        images = self._images(sampling.latents(seed, 0, num_samples, self.latent_dim), labels)
        png = tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)
        return {IMAGES: images, PNG: png}


def build_archive(generator, latent_dim: int, max_batch: int, image_shape=None):
    """A `keras.export.ExportArchive` with both signatures; tracks the generator's variables.

    Args:
      generator: the Keras generator to export (already built).
      latent_dim: the width of ``z``.
      max_batch: the largest batch either signature accepts.
      image_shape: ``(H, W, 3)`` of the images (None: the generator is called once to see).

    Returns:
      The archive, ready for ``write_out``.
    """
    import keras
    import tensorflow as tf

    image_shape = image_shape or _image_shape(generator, latent_dim)
    endpoints = _Endpoints(generator, latent_dim, max_batch, image_shape)
    archive = keras.export.ExportArchive()
    archive.track(generator)
    labels = ([tf.TensorSpec([None], tf.int32, name=LABELS)] if endpoints.num_classes
              else [])
    archive.add_endpoint(SERVING_DEFAULT, endpoints.serving_default, input_signature=[
        tf.TensorSpec([None, latent_dim], tf.float32, name=Z), *labels])
    archive.add_endpoint(GENERATE, endpoints.generate, input_signature=[
        tf.TensorSpec([], tf.int32, name=NUM_SAMPLES),
        tf.TensorSpec([], tf.int64, name=SEED), *labels])
    return archive


def warmup_batch_sizes(count: int, max_batch: int):
    """1, 2, 4, ... capped at ``max_batch``: a few distinct shapes to trace and allocate for.

    Args:
      count: how many sizes.
      max_batch: the cap.

    Returns:
      A list of ``count`` ints.
    """
    return [min(2 ** i, max_batch) for i in range(count)]


def warmup_logs(latent_dim: int, count: int, max_batch: int, model_name: str = "autogan",
                num_classes: int = 0):
    """`PredictionLog` protos (``count`` per signature) for TF Serving's warmup file.

    TF Serving replays them when it loads the model, so the first real request does not pay
    for tracing and memory allocation. ``serving_default`` gets seeded random ``z``.

    Args:
      latent_dim: the width of ``z``.
      count: requests per signature, with the batch sizes of `warmup_batch_sizes`.
      max_batch: the largest batch requested.
      model_name: the model name written into each request's ``model_spec``.
      num_classes: a conditional export's classes: its requests carry labels too (``i mod
        num_classes`` for ``serving_default``, -1 (random) for ``generate``).

    Returns:
      A list of ``2 * count`` `PredictionLog` protos.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    logs = []
    rng = np.random.default_rng(0)
    for i, batch in enumerate(warmup_batch_sizes(count, max_batch)):
        requests = {
            SERVING_DEFAULT: {Z: rng.standard_normal((batch, latent_dim)).astype(np.float32)},
            GENERATE: {NUM_SAMPLES: np.int32(batch), SEED: np.int64(i)},
        }
        if num_classes:
            requests[SERVING_DEFAULT][LABELS] = sampling.balanced_labels(0, batch, num_classes)
            requests[GENERATE][LABELS] = np.full([batch], -1, np.int32)
        for signature, inputs in requests.items():
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            logs.append(prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write_warmup(saved_model_dir: str, logs) -> str:
    """Write ``logs`` as TFRecords to the SavedModel's warmup file (`WARMUP_FILE`).

    Args:
      saved_model_dir: the SavedModel directory.
      logs: `PredictionLog` protos, e.g. from `warmup_logs`.

    Returns:
      The warmup file's path.
    """
    import tensorflow as tf

    path = os.path.join(saved_model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup(saved_model_dir: str):
    """The `PredictionLog` records of an export's warmup file (for checks and replay).

    Args:
      saved_model_dir: the SavedModel directory.

    Returns:
      A list of `PredictionLog` protos.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(saved_model_dir, WARMUP_FILE)
    logs = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record)
        logs.append(log)
    return logs


def export_generator(generator, export_dir: str, version, *, latent_dim: int | None = None,
                     max_batch: int = 256, warmup_requests: int = 3, overwrite: bool = False,
                     model_name: str = "autogan") -> str:
    """Write ``generator`` (pass the EMA weights) to ``export_dir/<version>/``; return that path.

    The SavedModel is written into a hidden temporary directory next to the
    target and renamed into place last, so a TF Serving instance polling
    ``export_dir`` never sees a half-written version.

    Args:
      generator: the Keras generator; it must map float32 ``z [B, latent_dim]`` (and int32
        ``labels [B]`` when it has ``num_classes``) to float32 images ``[B, H, W, 3]`` in
        [-1, 1] (it is called once to check that).
      export_dir: the model's base directory, which TF Serving polls.
      version: a positive integer (or all-digit string): the version directory's name.
      latent_dim: the width of ``z`` (None: ``generator.latent_dim``).
      max_batch: the largest batch the signatures accept.
      warmup_requests: warmup requests per signature (0: no warmup file).
      overwrite: replace an existing version directory.
      model_name: the model name in the warmup requests (TF Serving's ``--model_name``).

    Returns:
      The version directory ``export_dir/<version>``.

    Raises:
      ExportError: a bad version, ``max_batch``, ``warmup_requests`` or ``latent_dim``, an
        existing version without ``overwrite``, or a generator breaking the contract.
    """
    version = _check_version(version)
    max_batch = _check_positive("max_batch", max_batch)
    if isinstance(warmup_requests, bool) or not isinstance(warmup_requests, (int, np.integer)) \
            or warmup_requests < 0:
        raise ExportError(f"--warmup_requests must be >= 0, got {warmup_requests!r}")
    latent_dim = _resolve_latent_dim(generator, latent_dim)
    target = os.path.join(export_dir, str(version))
    if os.path.exists(target) and not overwrite:
        raise ExportError(f"{target} already exists; choose another --version or pass "
                          "overwrite=True")
    image_shape = _image_shape(generator, latent_dim)

    os.makedirs(export_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)
    try:
        out = os.path.join(staging, "model")
        build_archive(generator, latent_dim, max_batch, image_shape).write_out(out, verbose=False)
        if warmup_requests:
            write_warmup(out, warmup_logs(latent_dim, warmup_requests, max_batch, model_name,
                                          _num_classes(generator)))
        if os.path.exists(target):
            shutil.rmtree(target)
        os.rename(out, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def latest_version_dir(path: str) -> str:
    """``path`` itself if it is a SavedModel, else its highest numeric version subdirectory.

    Args:
      path: a SavedModel directory or a model base directory of numeric versions.

    Raises:
      ExportError: ``path`` is neither.
    """
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = [d for d in (os.listdir(path) if os.path.isdir(path) else []) if d.isdigit()
                and os.path.isfile(os.path.join(path, d, "saved_model.pb"))]
    if not versions:
        raise ExportError(f"{path} is neither a SavedModel nor a directory of numeric "
                          "SavedModel versions")
    return os.path.join(path, max(versions, key=int))
