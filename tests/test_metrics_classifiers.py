"""Keras classifiers as feature extractors, and the small CPU classifier."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from autogan_tf.metrics import classifiers


def _tiny_functional(num_classes=4, size=8):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pooled")(x)
    x = keras.layers.Dense(5, activation="tanh", name="embed")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="out")(x), name="tiny")


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = _tiny_functional()
    path = str(tmp_path_factory.mktemp("clf") / "tiny.keras")
    model.save(path)
    return model, path


def _images(n, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_default_features_are_the_last_layer_input(saved_model):
    model, path = saved_model
    extractor = classifiers.load_feature_extractor(path)
    assert extractor.name == "keras:tiny.keras"
    assert (extractor.num_classes, extractor.feature_dim) == (4, 5)
    images = _images(6)
    logits, feats = extractor(images)
    x = images.astype(np.float32)  # the model sees 0..255 floats
    embed = keras.Model(model.inputs[0], model.get_layer("embed").output)
    np.testing.assert_allclose(logits.numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(feats.numpy(), embed(x).numpy(), rtol=1e-5, atol=1e-6)


def test_named_feature_layer_is_flattened(saved_model):
    model, path = saved_model
    extractor = classifiers.load_feature_extractor(path, feature_layer="conv")
    assert extractor.feature_dim == 6 * 6 * 3
    images = _images(3, seed=1)
    _, feats = extractor(images)
    conv = keras.Model(model.inputs[0], model.get_layer("conv").output)
    np.testing.assert_allclose(feats.numpy(), conv(images.astype(np.float32)).numpy().reshape(3, -1),
                               rtol=1e-5, atol=1e-6)


def test_other_sizes_are_resized_to_the_model_input(saved_model):
    model, path = saved_model
    extractor = classifiers.load_feature_extractor(path)
    images = _images(2, size=20, seed=2)
    logits, _ = extractor(images)
    resized = tf.image.resize(images.astype(np.float32), (8, 8), method="bilinear")
    np.testing.assert_allclose(logits.numpy(), model(resized).numpy(), rtol=1e-5, atol=1e-6)


def test_batches_larger_than_max_batch_are_chunked(saved_model):
    model, _ = saved_model
    extractor = classifiers.KerasClassifierExtractor(model, max_batch=4)
    images = _images(11, seed=3)
    logits, feats = extractor(images)
    assert logits.shape == (11, 4) and feats.shape == (11, 5)
    np.testing.assert_allclose(logits.numpy(), model(images.astype(np.float32)).numpy(), atol=1e-5)


def test_classifier_errors(saved_model, tmp_path):
    _, path = saved_model
    with pytest.raises(classifiers.ClassifierError, match="--feature_layer=nope.*embed"):
        classifiers.load_feature_extractor(path, feature_layer="nope")
    with pytest.raises(classifiers.ClassifierError, match="not found"):
        classifiers.load_feature_extractor(str(tmp_path / "absent.keras"))
    other = tmp_path / "model.h5"
    other.write_bytes(b"x")
    with pytest.raises(classifiers.ClassifierError, match=r"\.keras"):
        classifiers.load_feature_extractor(str(other))
    with pytest.raises(classifiers.ClassifierError, match="Inception always uses pool_3"):
        classifiers.load_feature_extractor("inception", feature_layer="embed")


def test_loading_is_safe_mode(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)  # arbitrary code: refused in safe mode
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    path = str(tmp_path / "lambda.keras")
    model.save(path)
    with pytest.raises(classifiers.ClassifierError, match="lambda.keras"):
        classifiers.load_feature_extractor(path)


def test_small_classifier_layout_and_macs():
    model = classifiers.build_classifier(10, image_size=32, width=8)
    assert model.get_layer("rescale") is not None
    assert model.layers[-1].name == "logits" and model.layers[-1].input is model.get_layer(
        classifiers.FEATURE_LAYER).output
    assert model.output.shape == (None, 10)
    # Hand count: 3 stages at 32, 16, 8 px with widths 8, 16, 32; 3x3 convs; dense 32 -> 10.
    w, expected = 8, 0
    for side, c_in, c_out in [(32, 3, w), (32, w, w), (16, w, 2 * w), (16, 2 * w, 2 * w),
                              (8, 2 * w, 4 * w), (8, 4 * w, 4 * w)]:
        expected += side * side * 9 * c_in * c_out
    assert classifiers.classifier_macs(model) == expected + 4 * w * 10
    x = np.full((2, 32, 32, 3), 127.5, np.float32)
    assert model(x, training=False).shape == (2, 10)


def test_a_folder_smaller_than_a_batch_trains(tmp_path):
    """12 pictures and the default batch of 128: an epoch is one batch of 12 (it used to be
    none, and Keras waited for one forever)."""
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(6):
            colour = (200, 40 * i, 0) if label == "a" else (0, 40 * i, 200)
            Image.new("RGB", (10, 8), colour).save(tmp_path / label / f"{i}.png")
    model, accuracy = classifiers.train_classifier(f"folder:{tmp_path}", epochs=1, width=4,
                                                   verbose=0)
    assert model.output_shape == (None, 2) and 0.0 <= accuracy <= 1.0
