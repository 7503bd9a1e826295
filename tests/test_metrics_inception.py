"""Inception graph loader: tiny stand-in GraphDef with the real graph's tensor names.

The real 2015-12-05 graph (~90 MB, needs internet) is not available here, so a
graph is built in the test with the same layout the loader relies on:
``DecodeJpeg`` -> ``Cast`` -> ``ExpandDims`` -> ``ResizeBilinear`` -> ... ->
``pool_3`` -> ``pool_3/_reshape`` (batch fixed to 1, as in the original) ->
``softmax/logits/MatMul`` -> bias -> ``softmax``. The reference outputs come
from running that graph the TF1 way, one image per ``session.run`` through
``ExpandDims:0``, exactly as improved-GAN/TTUR feed it.
"""

import io
import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from autogan_tf.metrics import inception

FEATURE_DIM, NUM_CLASSES, RESIZE = 6, 5, 19


def build_tiny_inception_graph(seed=0):
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        contents = tf.compat.v1.placeholder(tf.string, [], name="DecodeJpeg/contents")
        x = tf.io.decode_jpeg(contents, channels=3, name="DecodeJpeg")
        x = tf.cast(x, tf.float32, name="Cast")
        x = tf.expand_dims(x, 0, name="ExpandDims")
        x = tf.compat.v1.image.resize_bilinear(x, tf.constant([RESIZE, RESIZE]), name="ResizeBilinear")
        x = tf.multiply(tf.subtract(x, 128.0, name="Sub"), 1.0 / 128.0, name="Mul")
        kernel = tf.constant(rng.normal(size=(3, 3, 3, FEATURE_DIM)).astype(np.float32))
        x = tf.nn.relu(tf.nn.conv2d(x, kernel, 2, "VALID"), name="mixed_10/join")
        pool = tf.nn.avg_pool2d(x, ksize=x.shape[1:3], strides=1, padding="VALID", name="pool_3")
        flat = tf.reshape(pool, [1, FEATURE_DIM], name="pool_3/_reshape")
        weights = tf.constant(rng.normal(size=(FEATURE_DIM, NUM_CLASSES)).astype(np.float32),
                              name="softmax/weights")
        bias = tf.constant(rng.normal(size=NUM_CLASSES).astype(np.float32), name="softmax/biases")
        logits = tf.matmul(flat, weights, name="softmax/logits/MatMul")
        tf.nn.softmax(tf.nn.bias_add(logits, bias, name="softmax/logits"), name="softmax")
    return graph.as_graph_def()


def reference_outputs(graph_def, images):
    """(logits-without-bias, pool_3) per image, fed one at a time like the original code."""
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    logits, feats = [], []
    with tf.compat.v1.Session(graph=graph) as sess:
        for img in images:
            lg, pool = sess.run(["softmax/logits/MatMul:0", "pool_3:0"],
                                {"ExpandDims:0": img[None].astype(np.float32)})
            logits.append(lg[0])
            feats.append(pool.reshape(-1))
    return np.stack(logits), np.stack(feats)


@pytest.fixture(scope="module")
def graph_def():
    return build_tiny_inception_graph()


@pytest.fixture(scope="module")
def graph_file(graph_def, tmp_path_factory):
    path = tmp_path_factory.mktemp("incep") / inception.GRAPH_NAME
    path.write_bytes(graph_def.SerializeToString())
    return str(path)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(inception.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(inception.SHA256_ENV, raising=False)
    return tmp_path / "cache"


def _images(n, h, w, seed=1):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def test_batched_outputs_match_per_image_original_feeding(graph_def):
    extractor = inception.InceptionExtractor(graph_def)
    assert (extractor.feature_dim, extractor.num_classes) == (FEATURE_DIM, NUM_CLASSES)
    assert extractor.name == "inception"
    images = _images(7, 32, 32)
    logits, feats = extractor(images)
    ref_logits, ref_feats = reference_outputs(graph_def, images)
    assert logits.shape == (7, NUM_CLASSES) and feats.shape == (7, FEATURE_DIM)
    np.testing.assert_allclose(feats.numpy(), ref_feats, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits.numpy(), ref_logits, rtol=1e-5, atol=1e-5)


def test_recorded_batch_one_shapes_do_not_pin_the_batch(graph_def):
    # Graphs saved with add_shapes=True record [1, ...] output shapes on every node.
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    with_shapes = graph.as_graph_def(add_shapes=True)
    assert any("_output_shapes" in node.attr for node in with_shapes.node)
    images = _images(4, 32, 32, seed=5)
    feats = inception.InceptionExtractor(with_shapes)(images)[1]
    np.testing.assert_allclose(feats.numpy(), reference_outputs(graph_def, images)[1],
                               rtol=1e-5, atol=1e-5)


def test_any_input_size_and_chunking(graph_def):
    extractor = inception.InceptionExtractor(graph_def, max_batch=2)
    images = _images(5, 48, 40, seed=3)
    logits, feats = extractor(images)  # 3 chunks of at most 2
    ref_logits, ref_feats = reference_outputs(graph_def, images)
    np.testing.assert_allclose(feats.numpy(), ref_feats, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits.numpy(), ref_logits, rtol=1e-5, atol=1e-5)


def test_loads_from_pb_and_from_release_tgz(graph_def, graph_file, tmp_path, empty_cache):
    archive = tmp_path / inception.ARCHIVE_NAME
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(graph_file, arcname="./" + inception.GRAPH_NAME)
        info = tarfile.TarInfo("./imagenet_synset_to_human_label_map.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    images = _images(3, 32, 32)
    expected = reference_outputs(graph_def, images)[1]
    for source in (graph_file, str(archive), str(tmp_path)):  # the directory holds the .tgz
        feats = inception.load_inception(inception_path=source)(images)[1]
        np.testing.assert_allclose(feats.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_uses_cache_directory_without_network(graph_file, empty_cache, monkeypatch):
    def no_network(url, dest):
        raise AssertionError("must not download when the graph is cached")

    monkeypatch.setattr(inception, "_fetch_url", no_network)
    os.makedirs(empty_cache)
    cached = empty_cache / inception.GRAPH_NAME
    cached.write_bytes(open(graph_file, "rb").read())
    assert inception.check_inception_available() == str(cached)
    assert inception.load_inception().feature_dim == FEATURE_DIM


def test_offline_error_names_url_and_flag(empty_cache, monkeypatch):
    def offline(url, dest):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(inception, "_fetch_url", offline)
    with pytest.raises(inception.InceptionUnavailableError) as err:
        inception.check_inception_available()
    message = str(err.value)
    assert inception.INCEPTION_URL in message
    assert "--inception_path" in message
    assert str(empty_cache) in message
    assert not any(p.endswith(".part") for p in os.listdir(empty_cache))  # no half file left


def test_download_goes_to_cache_and_checksum_is_enforced(graph_file, empty_cache, monkeypatch):
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as tar:
        tar.add(graph_file, arcname=inception.GRAPH_NAME)
    calls = []

    def fake_fetch(url, dest):
        calls.append(url)
        with open(dest, "wb") as f:
            f.write(payload.getvalue())

    monkeypatch.setattr(inception, "_fetch_url", fake_fetch)
    monkeypatch.setenv(inception.SHA256_ENV, "0" * 64)  # wrong pin: refused, nothing cached
    with pytest.raises(inception.InceptionGraphError, match="sha256"):
        inception.check_inception_available()
    assert not (empty_cache / inception.ARCHIVE_NAME).exists()

    import hashlib
    monkeypatch.setenv(inception.SHA256_ENV, hashlib.sha256(payload.getvalue()).hexdigest())
    path = inception.check_inception_available()
    assert path == str(empty_cache / inception.ARCHIVE_NAME)
    assert inception.check_inception_available() == path  # second call: from the cache
    assert calls == [inception.INCEPTION_URL] * 2


def test_bad_inception_path_errors(tmp_path, empty_cache):
    with pytest.raises(inception.InceptionUnavailableError, match="--inception_path"):
        inception.check_inception_available(str(tmp_path / "missing.pb"))
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\x00not a graph\xff" * 10)
    with pytest.raises(inception.InceptionGraphError, match="junk.pb"):
        inception.load_inception(str(junk))
    other = tmp_path / "other.pb"
    graph = tf.Graph()
    with graph.as_default():
        tf.constant(1.0, name="pool_3")
    other.write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(inception.InceptionGraphError, match="softmax/logits/MatMul"):
        inception.load_inception(str(other))


@pytest.mark.slow
def test_real_graph_scores_cifar10_like_the_literature(tmp_path):
    """With the real graph cached (or AUTOGAN_TF_INCEPTION_PATH set) and the CIFAR-10 JPEGs:
    IS of real CIFAR-10 test images is about 11 (11.24 on the original train set)."""
    try:
        source = inception.check_inception_available(os.environ.get("AUTOGAN_TF_INCEPTION_PATH"),
                                                     download=False)
    except inception.InceptionUnavailableError as e:
        pytest.skip(f"real Inception graph not available offline: {e}")
    archive = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                           "cifar10-jpg.tar.gz")
    if not os.path.isfile(archive):
        pytest.skip(f"CIFAR-10 JPEG archive not found at {archive}")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, members=[m for m in tar.getmembers() if "test/" in m.name])
    from autogan_tf import data
    from autogan_tf.metrics import scores, streaming

    extractor = inception.load_inception(source)
    assert (extractor.feature_dim, extractor.num_classes) == (2048, 1008)
    batches = data.make_uint8_dataset(f"folder:{tmp_path}", 100, 32, split="test",
                                      max_images=5000).as_numpy_iterator()
    mu, sigma, logits = streaming.compute_statistics(extractor, batches)
    assert mu.shape == (2048,) and sigma.shape == (2048, 2048) and logits.shape == (5000, 1008)
    is_mean, _ = scores.inception_score_from_logits(logits, 10)
    assert 10.0 < is_mean < 12.5
