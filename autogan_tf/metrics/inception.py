"""The 2015-12-05 Inception graph that published IS/FID numbers are computed with.

Scores are only comparable with the literature (IS 8.55 / FID 12.42 for
AutoGAN on CIFAR-10) when they come from this exact frozen graph, so it is
imported as-is (``classify_image_graph_def.pb`` from the release archive)
rather than rebuilt from ``keras.applications``. Images enter through the
``ExpandDims:0`` tensor, as in TTUR's and improved-GAN's code, so the graph's
own ``ResizeBilinear`` to 299x299 and normalisation apply; the batch
dimension is dynamic.

Where the graph comes from, in order: an explicit ``inception_path`` (the
``.pb`` or the release ``.tgz``), the cache directory (``$AUTOGAN_TF_CACHE``,
default ``~/.keras/autogan_tf``), else a one-time download of the release
archive. Without network and without a cached copy,
:func:`check_inception_available` raises :class:`InceptionUnavailableError`
saying what to fetch and which flag to pass; commands call it before
spending time on training.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile

from autogan_tf import errors

INCEPTION_URL = "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz"
ARCHIVE_NAME = "inception-2015-12-05.tgz"
GRAPH_NAME = "classify_image_graph_def.pb"
# sha256 of the release archive. Left empty when it could not be confirmed
# against a real download; then the first verified download records the
# digest it got (``<archive>.sha256`` in the cache) and later loads are
# checked against that. Set AUTOGAN_TF_INCEPTION_SHA256 to pin it yourself.
INCEPTION_SHA256 = ""

INPUT_TENSOR = "ExpandDims:0"  # [1, H, W, 3] float32 in 0..255 in the original graph
FEATURE_TENSOR = "pool_3:0"  # [N, 1, 1, 2048]
LOGITS_MATMUL_OP = "softmax/logits/MatMul"  # its second input is the 2048 x 1008 weight matrix

CACHE_ENV = "AUTOGAN_TF_CACHE"
SHA256_ENV = "AUTOGAN_TF_INCEPTION_SHA256"


class InceptionUnavailableError(errors.UserError, RuntimeError):
    """The Inception graph is neither given, nor cached, nor downloadable."""


class InceptionGraphError(errors.UserError):
    """A file that is not the expected Inception graph (wrong tensors or corrupt)."""


# --------------------------------------------------------------------------
# Locating the graph
# --------------------------------------------------------------------------


def cache_dir() -> str:
    """Where downloaded networks are kept: ``$AUTOGAN_TF_CACHE`` or ``~/.keras/autogan_tf``."""
    return os.path.expanduser(os.environ.get(CACHE_ENV) or os.path.join("~", ".keras", "autogan_tf"))


def check_inception_available(inception_path: str | None = None, download: bool = True) -> str:
    """Return a path to the graph (.pb or .tgz), downloading it once if needed.

    Cheap when the graph is already cached, so training and search commands call it up
    front rather than failing at their first evaluation.

    Args:
      inception_path: an explicit ``.pb``, ``.tgz`` or a directory holding one (None: the
        cache, then a download).
      download: allow the one-time download when nothing is cached.

    Returns:
      The path of the graph file or the release archive.

    Raises:
      InceptionUnavailableError: nothing usable exists and the download is disabled or fails;
        the message names the URL to fetch by hand and the ``--inception_path`` flag.
      InceptionGraphError: a cached or downloaded archive fails its checksum.
    """
    if inception_path:
        return _explicit_source(inception_path)
    cached = _cached_source()
    if cached:
        return cached
    if not download:
        raise InceptionUnavailableError(_unavailable_message("downloads are disabled"))
    return _download_archive()


def _explicit_source(path: str) -> str:
    path = os.path.expanduser(path)
    if os.path.isdir(path):
        for name in (GRAPH_NAME, ARCHIVE_NAME):
            if os.path.isfile(os.path.join(path, name)):
                return os.path.join(path, name)
        raise InceptionUnavailableError(
            f"--inception_path={path} is a directory without {GRAPH_NAME} or {ARCHIVE_NAME}")
    if not os.path.isfile(path):
        raise InceptionUnavailableError(
            f"--inception_path={path} does not exist; pass {GRAPH_NAME} or {ARCHIVE_NAME} "
            f"(from {INCEPTION_URL})")
    return path


def _cached_source() -> str | None:
    directory = cache_dir()
    graph = os.path.join(directory, GRAPH_NAME)
    if os.path.isfile(graph):
        return graph
    archive = os.path.join(directory, ARCHIVE_NAME)
    if os.path.isfile(archive):
        _verify_checksum(archive)
        return archive
    return None


def _unavailable_message(reason: str) -> str:
    return (f"The Inception network for IS/FID is not available ({reason}). Download "
            f"{INCEPTION_URL} on a machine with internet access and either pass it with "
            f"--inception_path=/path/to/{ARCHIVE_NAME} (or the extracted {GRAPH_NAME}), or copy it "
            f"into {cache_dir()} (set ${CACHE_ENV} to use another cache directory).")


def _fetch_url(url: str, destination: str) -> None:
    """Download ``url`` to ``destination`` (a separate function so tests can replace it)."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def _download_archive() -> str:
    directory = cache_dir()
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, ARCHIVE_NAME)
    fd, partial = tempfile.mkstemp(prefix=ARCHIVE_NAME + ".", suffix=".part", dir=directory)
    os.close(fd)
    print(f"Downloading {INCEPTION_URL} to {target} (one time only)...", file=sys.stderr)
    try:
        _fetch_url(INCEPTION_URL, partial)
    except Exception as e:  # any network/OS failure means the same thing to the user
        os.unlink(partial)
        raise InceptionUnavailableError(_unavailable_message(f"download failed: {e}")) from e
    try:
        digest = _verify_checksum(partial)
        read_graph_bytes(partial)  # a truncated or wrong archive fails here, not mid-evaluation
    except Exception:
        os.unlink(partial)
        raise
    os.replace(partial, target)
    if not _expected_sha256():
        with open(target + ".sha256", "w") as f:
            f.write(digest + "\n")
    return target


def _expected_sha256() -> str:
    return (os.environ.get(SHA256_ENV) or INCEPTION_SHA256).strip().lower()


def file_sha256(path: str) -> str:
    """The hex sha256 digest of a file, read in 1 MiB chunks.

    Args:
      path: the file.

    Returns:
      The 64-character lowercase hex digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify_checksum(archive: str) -> str:
    """Check the archive against the pinned (or first recorded) sha256."""
    digest = file_sha256(archive)
    expected = _expected_sha256()
    recorded = archive + ".sha256"
    if not expected and os.path.isfile(recorded):
        with open(recorded) as f:
            expected = f.read().strip().lower()
    if expected and digest != expected:
        raise InceptionGraphError(
            f"{archive} has sha256 {digest}, expected {expected}: the file is corrupt or not the "
            f"2015-12-05 Inception release. Delete it and fetch {INCEPTION_URL} again.")
    return digest


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def read_graph_bytes(path: str) -> bytes:
    """Serialized GraphDef from a ``.pb`` or from inside the release ``.tgz``.

    Args:
      path: a ``classify_image_graph_def.pb`` or a tar archive containing one.

    Returns:
      The serialized GraphDef.

    Raises:
      InceptionGraphError: the archive holds no ``classify_image_graph_def.pb``.
    """
    if tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as tar:
            member = next((m for m in tar.getmembers()
                           if os.path.basename(m.name) == GRAPH_NAME and m.isfile()), None)
            if member is None:
                raise InceptionGraphError(f"{path} contains no {GRAPH_NAME}")
            return tar.extractfile(member).read()
    with open(path, "rb") as f:
        return f.read()


def parse_graph_def(data: bytes, source: str = "<bytes>"):
    """Parse a serialized GraphDef and check that it has the Inception nodes this module uses.

    Args:
      data: the serialized GraphDef.
      source: where ``data`` came from, for the messages.

    Returns:
      A ``tf.compat.v1.GraphDef``.

    Raises:
      InceptionGraphError: ``data`` is not a GraphDef, or lacks the input, pool_3 or logits
        nodes.
    """
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except Exception as e:  # protobuf raises DecodeError, a bare Exception subclass
        raise InceptionGraphError(f"{source} is not a TensorFlow GraphDef: {e}") from e
    names = {node.name for node in graph_def.node}
    needed = {INPUT_TENSOR.split(":")[0], FEATURE_TENSOR.split(":")[0], LOGITS_MATMUL_OP}
    missing = needed - names
    if missing:
        raise InceptionGraphError(f"{source} lacks the Inception node(s) {sorted(missing)}")
    return graph_def


class InceptionExtractor:
    """Class logits and pool_3 features of the 2015 Inception graph.

    ``extractor(images)`` takes uint8 (or float in 0..255) images
    ``[B, H, W, 3]`` of any size and returns ``(logits [B, 1008],
    features [B, 2048])`` as float32 tensors. The logits are pool_3 times the
    ``softmax/logits`` weight matrix without bias, which is what the
    improved-GAN Inception Score feeds to its softmax. Large batches are
    processed ``max_batch`` images at a time to bound memory at 299x299.

    Args:
      graph_def: the parsed Inception GraphDef (`parse_graph_def`).
      max_batch: the largest batch given to the graph at once.
    """

    name = "inception"

    def __init__(self, graph_def, max_batch: int = 50):
        import tensorflow as tf

        self.max_batch = int(max_batch)
        graph_def = _without_recorded_shapes(graph_def)

        def imported(images):
            tf.graph_util.import_graph_def(graph_def, input_map={INPUT_TENSOR: images}, name="")
            graph = tf.compat.v1.get_default_graph()
            pool3 = graph.get_tensor_by_name(FEATURE_TENSOR)
            weights = graph.get_operation_by_name(LOGITS_MATMUL_OP).inputs[1]
            features = tf.reshape(pool3, [tf.shape(pool3)[0], weights.shape[0]])
            return tf.matmul(features, weights), features

        self._fn = tf.compat.v1.wrap_function(
            imported, [tf.TensorSpec([None, None, None, 3], tf.float32)])
        logits_spec, feature_spec = self._fn.structured_outputs
        self.num_classes = int(logits_spec.shape[-1])
        self.feature_dim = int(feature_spec.shape[-1])

    def __call__(self, images):
        """Logits and pool_3 features of a batch of images.

        Args:
          images: uint8 (or float in 0..255) ``[B, H, W, 3]``, any size.

        Returns:
          ``(logits [B, 1008], features [B, 2048])``, float32 tensors.

        Raises:
          ValueError: ``images`` is not ``[B, H, W, 3]``.
        """
        import tensorflow as tf

        images = tf.cast(tf.convert_to_tensor(images), tf.float32)
        if images.shape.rank != 4 or images.shape[-1] != 3:
            raise ValueError(f"Inception expects images [B, H, W, 3], got shape {images.shape}")
        n = int(images.shape[0])
        if n <= self.max_batch:
            return self._fn(images)
        chunks = [self._fn(images[i:i + self.max_batch]) for i in range(0, n, self.max_batch)]
        return (tf.concat([c[0] for c in chunks], 0), tf.concat([c[1] for c in chunks], 0))


def _without_recorded_shapes(graph_def):
    """A copy without ``_output_shapes`` attributes.

    Recorded shapes carry the original batch size of 1 (the graph was built
    around ``ExpandDims`` of a single decoded JPEG); the importer would merge
    them into the inferred shapes and pin the batch dimension to 1, which is
    what the original code's per-tensor shape patching worked around.
    """
    import tensorflow as tf

    stripped = tf.compat.v1.GraphDef()
    stripped.CopyFrom(graph_def)
    for node in stripped.node:
        if "_output_shapes" in node.attr:
            del node.attr["_output_shapes"]
    return stripped


def load_inception(inception_path: str | None = None, download: bool = True,
                   max_batch: int = 50) -> InceptionExtractor:
    """Locate (see module docstring), import and wrap the Inception graph.

    Args:
      inception_path: an explicit graph file, archive or directory (None: cache, then download).
      download: allow the one-time download.
      max_batch: the largest batch given to the graph at once.

    Returns:
      An `InceptionExtractor`.

    Raises:
      InceptionUnavailableError: the graph cannot be found or downloaded.
      InceptionGraphError: the file is not the expected Inception graph.
    """
    source = check_inception_available(inception_path, download=download)
    return InceptionExtractor(parse_graph_def(read_graph_bytes(source), source), max_batch=max_batch)

