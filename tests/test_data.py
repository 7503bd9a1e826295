"""Tests for autogan_tf.data: names, folders, shapes, tfds (mocked) and real CIFAR-10 JPEGs."""

import io
import os
import pathlib
import tarfile

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")

from autogan_tf import data  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
CIFAR_TARBALL = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"


@pytest.fixture(autouse=True)
def _fresh_cache():
    data.clear_cache()
    yield
    data.clear_cache()


def _write(path, pixels, fmt=None, **kwargs):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt, **kwargs)
    return path


def _random_pixels(rng, height, width):
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _collect(ds):
    """All batches of a finite dataset as numpy: (images, labels) or images."""
    parts = list(ds.as_numpy_iterator())
    if isinstance(parts[0], tuple):
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return np.concatenate(parts)


def _as_float(pixels):
    return pixels.astype(np.float32) / 127.5 - 1.0


def _block_mean(pixels, factor):
    h, w, c = pixels.shape
    blocks = pixels.astype(np.float64).reshape(h // factor, factor, w // factor, factor, c)
    return blocks.mean(axis=(1, 3))


def _sorted_rows(images):
    """Images as rows in a canonical order, to compare two collections regardless of order."""
    flat = images.reshape(len(images), -1)
    return flat[np.lexsort(flat.T[::-1])]


# --------------------------------------------------------------------------- names


def test_parse_dataset_known_names_and_folder():
    assert data.parse_dataset("cifar10") == ("cifar10", None)
    assert data.parse_dataset(" STL10 ") == ("stl10", None)
    assert data.parse_dataset("shapes") == ("shapes", None)
    assert data.parse_dataset("folder:/data/x:y") == ("folder", "/data/x:y")
    assert data.parse_dataset("folder:~/imgs") == ("folder", os.path.expanduser("~/imgs"))


@pytest.mark.parametrize("name", ["imagenet", "cifar100", "folder:", "", "shapes:3", "cifar10:x"])
def test_parse_dataset_rejects_unknown_names_listing_valid_ones(name):
    with pytest.raises(data.DataError, match="--dataset") as info:
        data.parse_dataset(name)
    if name and name != "folder:":
        for valid in data.DATASETS + ("folder:PATH",):
            assert valid in str(info.value)


def test_unknown_name_fails_in_make_dataset_too():
    with pytest.raises(data.DataError, match="--dataset.*cifar10, stl10, shapes"):
        data.make_dataset("mnist", 8)


def test_bad_arguments_are_rejected():
    with pytest.raises(data.DataError, match="split"):
        data.make_dataset("shapes", 8, split="validation")
    with pytest.raises(data.DataError, match="--on_bad_image"):
        data.make_dataset("shapes", 8, on_bad_image="ignore")
    with pytest.raises(ValueError, match="batch_size"):
        data.make_dataset("shapes", 0)


def test_native_resolution_and_classes_of_builtin_sets():
    assert [data.native_resolution(n) for n in ("cifar10", "stl10", "shapes")] == [32, 48, 32]
    assert data.num_classes("cifar10") == data.num_classes("stl10") == 10
    assert data.num_classes("shapes") == len(data.SHAPE_CLASSES)


# --------------------------------------------------------------------------- shapes


def test_make_shapes_is_deterministic_and_seed_dependent():
    a_images, a_labels = data.make_shapes(200, 32, seed=5)
    b_images, b_labels = data.make_shapes(200, 32, seed=5)
    c_images, _ = data.make_shapes(200, 32, seed=6)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_labels, b_labels)
    assert a_images.dtype == np.uint8 and a_images.shape == (200, 32, 32, 3)
    assert a_labels.dtype == np.int32 and a_labels.shape == (200,)
    assert np.mean(a_images != c_images) > 0.5


@pytest.mark.parametrize("count", [8, 203, 1000])
def test_make_shapes_labels_are_balanced(count):
    _, labels = data.make_shapes(count, 8, seed=1)
    counts = np.bincount(labels, minlength=len(data.SHAPE_CLASSES))
    assert counts.sum() == count and counts.max() - counts.min() <= 1


def test_make_shapes_draws_the_same_picture_at_any_size():
    """Geometry is in image-side units: 64 px block-averaged to 32 px is the 32 px picture."""
    big, labels_big = data.make_shapes(64, 64, seed=3)
    small, labels_small = data.make_shapes(64, 32, seed=3)
    np.testing.assert_array_equal(labels_big, labels_small)
    shrunk = np.stack([_block_mean(img, 2) for img in big])
    # Edges are anti-aliased differently at the two sizes; interiors agree to rounding.
    assert np.median(np.abs(shrunk - small)) <= 1.0
    assert np.mean(np.abs(shrunk - small)) < 3.0


def test_every_shape_stands_out_from_its_background():
    images, labels = data.make_shapes(400, 32, seed=0)
    for image in images:
        pixels = image.reshape(-1, 3).astype(int)
        # The colour farthest from the mean is one side (shape or background); the other
        # side must be a sizeable group of pixels far (>= 60 levels) from it.
        extreme = pixels[np.abs(pixels - pixels.mean(0)).max(1).argmax()]
        distance = np.abs(pixels - extreme).max(1)
        assert np.sum(distance <= 30) >= 20 and np.sum(distance >= 60) >= 20
    assert set(labels) == set(range(len(data.SHAPE_CLASSES)))


def _bars_across(image, vertical):
    """How many separate bars of the shape's colour a stripes picture shows across its stripes.

    Pixels are split between the two colours farthest apart (the shape is the smaller
    group); a row or column is a bar when it holds at least half as many shape pixels as
    the fullest one, and the bars are the runs of such rows or columns.
    """
    pixels = image.reshape(-1, 3).astype(float)
    one = pixels[np.abs(pixels - pixels.mean(0)).max(1).argmax()]
    other = pixels[np.abs(pixels - one).max(1).argmax()]
    near_one = np.abs(pixels - one).max(1) < np.abs(pixels - other).max(1)
    shape = near_one if near_one.mean() < 0.5 else ~near_one
    profile = shape.reshape(image.shape[:2]).sum(axis=0 if vertical else 1)
    bar = profile >= 0.5 * profile.max()
    return int(bar[0] + np.sum(bar[1:] & ~bar[:-1]))


def test_stripes_stay_separate_bars_at_the_quick_starts_16_px():
    """Shrunk to 16 px as the quick start sees them, stripes pictures keep every bar and gap.

    With four bars, 84 of 200 such pictures lost bars at 16 px (37 became one plain block),
    and the quick start's generators drew squares instead of stripes.
    """
    images, labels = data.make_shapes(800, 32, seed=0)
    counts = [_bars_across(_pil_half(image), data.SHAPE_CLASSES[label].startswith("vertical"))
              for image, label in zip(images, labels)
              if data.SHAPE_CLASSES[label].endswith("stripes")]
    assert len(counts) == 200 and counts == [data.SHAPES_STRIPES] * 200


def test_shapes_dataset_range_shape_labels_and_determinism():
    def first_batches(seed):
        ds = data.make_dataset("shapes", 16, 8, seed=seed, with_labels=True)
        return [(x.numpy(), y.numpy()) for x, y in ds.take(3)]

    one, two, other = first_batches(0), first_batches(0), first_batches(1)
    for (x1, y1), (x2, y2) in zip(one, two):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(one[0][1], other[0][1])
    images, labels = one[0]
    assert images.shape == (16, 8, 8, 3) and images.dtype == np.float32
    assert labels.dtype == np.int32
    assert images.min() >= -1.0 and images.max() <= 1.0


def test_shapes_dataset_matches_make_shapes_resized_as_pil():
    reference, ref_labels = data.make_shapes(data.SHAPES_SPLIT_SIZES["test"], 32,
                                             seed=data.SHAPES_SPLIT_SEEDS["test"])
    images = _collect(data.make_uint8_dataset("shapes", 100, 16, split="test", max_images=50))
    assert images.shape == (50, 16, 16, 3)
    expected = np.stack([_pil_half(img) for img in reference[:50]])
    np.testing.assert_array_equal(images, expected)
    _, labels = _collect(data.make_dataset("shapes", 25, split="test", shuffle=False, repeat=False,
                                           with_labels=True, max_images=50))
    np.testing.assert_array_equal(labels, ref_labels[:50])


def test_a_small_cnn_learns_shapes_in_seconds():
    """The quick start relies on ``shapes`` being learnable: a 3-layer CNN, 450 steps, 16 px."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    train = data.make_dataset("shapes", 64, 16, with_labels=True, max_images=3000)
    test = data.make_dataset("shapes", 250, 16, split="test", with_labels=True, shuffle=False,
                             repeat=False, max_images=1000)
    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(data.SHAPE_CLASSES)),
    ])
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(train, steps_per_epoch=450, epochs=1, verbose=0, shuffle=False)
    _, accuracy = model.evaluate(test, verbose=0)
    assert accuracy > 0.85  # chance is 1/8


def test_shuffled_epoch_visits_every_image_once():
    ds = data.make_dataset("shapes", 10, split="test", max_images=30, with_labels=False, seed=4)
    epoch = np.concatenate([x.numpy() for x in ds.take(3)])
    reference = _as_float(data.make_shapes(data.SHAPES_SPLIT_SIZES["test"], 32,
                                           seed=data.SHAPES_SPLIT_SEEDS["test"])[0][:30])
    np.testing.assert_allclose(_sorted_rows(epoch), _sorted_rows(reference), atol=1e-6)
    assert not np.allclose(epoch, reference)  # and it was shuffled


# --------------------------------------------------------------------------- folders


@pytest.fixture
def class_folder(tmp_path):
    """Two classes of lossless 8x8 PNGs, one nested a level deeper; returns (root, {label: [pixels]})."""
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    written = {0: [], 1: []}
    for i in range(5):
        pixels = _random_pixels(rng, 8, 8)
        _write(root / "bees" / f"b{i}.png", pixels)
        written[1].append(pixels)
    for i in range(3):
        pixels = _random_pixels(rng, 8, 8)
        sub = "deep/er" if i == 0 else ""
        _write(root / "ants" / sub / f"a{i}.PNG", pixels)
        written[0].append(pixels)
    (root / "ants" / "notes.txt").write_text("not an image")
    return root, written


def test_folder_labels_from_sorted_subfolders_recursive_and_exact_pixels(class_folder):
    root, written = class_folder
    name = f"folder:{root}"
    assert data.num_classes(name) == 2
    assert data.native_resolution(name) == 8
    images, labels = _collect(data.make_dataset(name, 3, shuffle=False, repeat=False,
                                                with_labels=True, drop_remainder=False))
    assert images.shape == (8, 8, 8, 3) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1
    for label in (0, 1):
        np.testing.assert_allclose(_sorted_rows(images[labels == label]),
                                   _sorted_rows(_as_float(np.stack(written[label]))), atol=1e-6)


def test_folder_resize_is_pil_bilinear_when_shrinking(class_folder):
    root, written = class_folder
    images = _collect(data.make_uint8_dataset(f"folder:{root}", 16, 4))
    expected = np.stack([_pil_half(p) for p in written[0] + written[1]])
    assert images.shape == (8, 4, 4, 3) and images.dtype == np.uint8
    np.testing.assert_allclose(_sorted_rows(images.astype(float)),
                               _sorted_rows(np.round(expected)), atol=1)


def test_folder_without_subfolders_has_label_zero_and_crops_the_centre(tmp_path):
    rng = np.random.default_rng(1)
    wide = _random_pixels(rng, 6, 10)  # H=6, W=10 -> centre 6x6 is columns 2..7
    _write(tmp_path / "wide.png", wide)
    _write(tmp_path / "square.png", _random_pixels(rng, 6, 6))
    name = f"folder:{tmp_path}"
    assert data.num_classes(name) == 1
    images, labels = _collect(data.make_dataset(name, 2, 6, shuffle=False, repeat=False,
                                                with_labels=True))
    np.testing.assert_array_equal(labels, [0, 0])
    assert any(np.allclose(img, _as_float(wide[:, 2:8])) for img in images)


def test_folder_jpeg_matches_pil_decoding(tmp_path):
    rng = np.random.default_rng(2)
    smooth = np.clip(np.cumsum(rng.integers(-8, 9, (16, 16, 3)), axis=1) + 128, 0, 255)
    path = _write(tmp_path / "x" / "img.jpg", smooth.astype(np.uint8), quality=95,
                  subsampling=0)  # 4:4:4, so decoders differ only by IDCT rounding
    reference = np.asarray(Image.open(path).convert("RGB"), dtype=float)
    images = _collect(data.make_uint8_dataset(f"folder:{tmp_path}", 4))
    assert images.shape == (1, 16, 16, 3)
    assert np.abs(images[0].astype(float) - reference).max() <= 1


def test_folder_train_test_layout_selects_the_split(tmp_path):
    rng = np.random.default_rng(3)
    for split, count in (("train", 4), ("test", 2)):
        for cls in ("cat", "dog"):
            for i in range(count):
                _write(tmp_path / split / cls / f"{i}.png", _random_pixels(rng, 4, 4))
    _write(tmp_path / "test" / "emu" / "0.png", _random_pixels(rng, 4, 4))
    name = f"folder:{tmp_path}"
    assert data.num_classes(name) == 3  # cat, dog, emu across both splits
    _, train_labels = _collect(data.make_dataset(name, 100, shuffle=False, repeat=False,
                                                 with_labels=True, drop_remainder=False))
    _, test_labels = _collect(data.make_dataset(name, 100, split="test", shuffle=False,
                                                repeat=False, with_labels=True, drop_remainder=False))
    assert sorted(train_labels) == [0] * 4 + [1] * 4
    assert sorted(test_labels) == [0, 0, 1, 1, 2]


def test_uint8_dataset_keeps_the_last_partial_batch(class_folder):
    root, _ = class_folder
    sizes = [len(b) for b in data.make_uint8_dataset(f"folder:{root}", 3).as_numpy_iterator()]
    assert sizes == [3, 3, 2]
    full = [len(b) for b in data.make_dataset(f"folder:{root}", 3, shuffle=False, repeat=False)]
    assert full == [3, 3]


def test_streaming_path_delivers_the_same_images(class_folder, monkeypatch):
    root, _ = class_folder
    in_memory = _collect(data.make_uint8_dataset(f"folder:{root}", 5, 4))
    data.clear_cache()
    monkeypatch.setattr(data, "IN_MEMORY_BYTES", 0)
    streamed = _collect(data.make_uint8_dataset(f"folder:{root}", 5, 4))
    np.testing.assert_array_equal(_sorted_rows(streamed), _sorted_rows(in_memory))
    batches = data.make_dataset(f"folder:{root}", 4, 4, seed=7).take(4)
    epoch = np.concatenate([b.numpy() for b in batches][:2])  # 8 images = one epoch
    np.testing.assert_allclose(_sorted_rows(epoch), _sorted_rows(_as_float(in_memory)), atol=1e-6)


def test_max_images_takes_a_fixed_subset(class_folder):
    root, _ = class_folder
    first = _collect(data.make_uint8_dataset(f"folder:{root}", 8, max_images=5))
    again = _collect(data.make_uint8_dataset(f"folder:{root}", 8, max_images=5))
    assert len(first) == 5
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("content", [b"this is not a png", b""], ids=["garbage", "empty"])
def test_corrupt_image_error_names_the_file_or_is_skipped(class_folder, content):
    root, _ = class_folder
    bad = root / "bees" / "broken.png"
    bad.write_bytes(content)
    name = f"folder:{root}"
    with pytest.raises(data.DataError, match="broken.png") as info:
        data.make_dataset(name, 2)
    assert "--on_bad_image=skip" in str(info.value)
    with pytest.warns(data.BadImageWarning, match="broken.png"):
        ds = data.make_dataset(name, 2, shuffle=False, repeat=False, drop_remainder=False,
                               on_bad_image="skip")
    assert len(_collect(ds)) == 8


def test_truncated_jpeg_is_reported(tmp_path):
    rng = np.random.default_rng(4)
    good = _write(tmp_path / "good.jpg", _random_pixels(rng, 32, 32))
    buffer = io.BytesIO()
    Image.fromarray(_random_pixels(rng, 32, 32)).save(buffer, format="JPEG")
    (tmp_path / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(data.DataError, match="cut.jpg"):
        data.make_uint8_dataset(f"folder:{tmp_path}", 2)
    with pytest.warns(data.BadImageWarning, match="cut.jpg"):
        images = _collect(data.make_uint8_dataset(f"folder:{tmp_path}", 2, on_bad_image="skip"))
    np.testing.assert_array_equal(images[0], np.asarray(Image.open(good).convert("RGB")))


@pytest.fixture
def mixed_folder(tmp_path):
    """Greyscale, grey+alpha, RGBA, palette, RGB (one not square) PNGs and a greyscale JPEG,
    in two classes; returns the root."""
    rng = np.random.default_rng(3)
    root = tmp_path / "mixed"
    grey = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    _write(root / "a" / "grey.png", grey)
    _write(root / "a" / "grey_alpha.png", rng.integers(0, 256, (8, 8, 2), dtype=np.uint8))
    _write(root / "a" / "rgba.png", rng.integers(0, 256, (8, 8, 4), dtype=np.uint8))
    _write(root / "b" / "wide.png", _random_pixels(rng, 8, 12))
    palette = Image.fromarray(_random_pixels(rng, 8, 8)).convert("P")
    (root / "b").mkdir(parents=True, exist_ok=True)
    palette.save(root / "b" / "palette.png")
    _write(root / "b" / "grey.jpg", grey, quality=95)
    return root


def test_greyscale_and_rgba_images_become_rgb_as_pil_converts_them(mixed_folder):
    paths, _, _ = data._list_folder(str(mixed_folder), "train")
    images = _collect(data.make_uint8_dataset(f"folder:{mixed_folder}", 8, 8))
    assert images.shape == (6, 8, 8, 3)
    for path, image in zip(paths, images):
        expected = np.asarray(Image.open(path).convert("RGB"))
        left = (expected.shape[1] - 8) // 2
        np.testing.assert_array_equal(image, expected[:, left:left + 8], err_msg=path)


def test_to_rgb_repeats_grey_and_drops_alpha():
    grey = np.arange(4, dtype=np.uint8).reshape(2, 2, 1)
    np.testing.assert_array_equal(data.to_rgb(grey).numpy(), np.repeat(grey, 3, axis=2))
    grey_alpha = np.concatenate([grey, grey + 100], axis=2)
    np.testing.assert_array_equal(data.to_rgb(grey_alpha).numpy(), np.repeat(grey, 3, axis=2))
    rgba = np.arange(16, dtype=np.uint8).reshape(2, 2, 4)
    np.testing.assert_array_equal(data.to_rgb(rgba).numpy(), rgba[..., :3])
    np.testing.assert_array_equal(data.to_rgb(rgba[..., :3]).numpy(), rgba[..., :3])


def test_describe_says_what_a_folder_was_read_as(mixed_folder, tmp_path):
    assert data.describe(f"folder:{mixed_folder}", 4) == (
        f"folder:{mixed_folder}: 6 images in 2 classes, 8x8 to 12x8 px, centre-cropped to "
        "squares (1 was not square) and resized to 4x4 px; 3 greyscale and 1 RGBA images "
        "converted to RGB")
    rng = np.random.default_rng(4)
    for split, count in (("train", 3), ("test", 1)):
        for i in range(count):
            _write(tmp_path / "split" / split / f"{i}.png", _random_pixels(rng, 6, 6))
    assert data.describe(f"folder:{tmp_path / 'split'}", 6) == (
        f"folder:{tmp_path / 'split'}: 3 images without class sub-folders (train split), "
        "6x6 px, kept at 6x6 px")
    assert data.describe(f"folder:{tmp_path / 'split'}", 6, "test").startswith(
        f"folder:{tmp_path / 'split'}: 1 image without class sub-folders (test split)")
    assert data.describe("shapes", 16) == ("shapes: 10,000 images in 8 classes (train split), "
                                           "resized to 16x16 px")


def test_describe_counts_skipped_files(mixed_folder):
    (mixed_folder / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.warns(data.BadImageWarning):
        text = data.describe(f"folder:{mixed_folder}", 8, on_bad_image="skip")
    assert text.startswith(f"folder:{mixed_folder}: 6 images in 2 classes")
    assert text.endswith("; 1 unreadable file(s) skipped")


def test_folder_of_only_bad_images_is_an_error_even_when_skipping(tmp_path):
    (tmp_path / "a.png").write_bytes(b"nope")
    with pytest.raises(data.DataError, match="a.png"):
        data.make_dataset(f"folder:{tmp_path}", 2, on_bad_image="skip")


def test_missing_and_empty_folders_are_clear_errors(tmp_path):
    with pytest.raises(data.DataError, match="--dataset=folder:.*no such directory"):
        data.make_dataset(f"folder:{tmp_path / 'nope'}", 2)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(data.DataError, match="--dataset=folder:.*no images"):
        data.make_dataset(f"folder:{tmp_path / 'empty'}", 2)
    with pytest.raises(data.DataError, match="no images"):
        data.native_resolution(f"folder:{tmp_path / 'empty'}")


# --------------------------------------------------------------------------- tfds (mocked)


@pytest.fixture
def mock_tfds():
    tfds = pytest.importorskip("tensorflow_datasets")

    def start(num_examples):
        return tfds.testing.mock_data(num_examples=num_examples,
                                      policy=tfds.testing.MockPolicy.USE_CODE)
    return tfds, start


def _tfds_reference(tfds, name, split):
    builder = tfds.builder(name)
    examples = list(builder.as_dataset(split=split, shuffle_files=False).as_numpy_iterator())
    return np.stack([e["image"] for e in examples]), np.array([e["label"] for e in examples])


def test_cifar10_through_mocked_tfds(mock_tfds):
    tfds, mock = mock_tfds
    with mock(12):
        ref_images, ref_labels = _tfds_reference(tfds, "cifar10", "test")
        images, labels = _collect(data.make_dataset("cifar10", 4, split="test", shuffle=False,
                                                    repeat=False, with_labels=True))
        batch = next(iter(data.make_dataset("cifar10", 5, 16)))
    assert images.shape == (12, 32, 32, 3)
    np.testing.assert_allclose(images, _as_float(ref_images), atol=1e-6)
    np.testing.assert_array_equal(labels, ref_labels)
    assert batch.shape == (5, 16, 16, 3) and batch.dtype == tf.float32


def test_stl10_train_includes_unlabelled_and_is_48px(mock_tfds):
    tfds, mock = mock_tfds
    with mock(6):
        train, _ = _tfds_reference(tfds, "stl10", "train")
        unlabelled, _ = _tfds_reference(tfds, "stl10", "unlabelled")
        images = _collect(data.make_uint8_dataset("stl10", 5))
        labelled, labels = _collect(data.make_dataset("stl10", 3, shuffle=False, repeat=False,
                                                      with_labels=True))
    assert train.shape[1:] == (96, 96, 3)
    assert images.shape == (12, 48, 48, 3)  # 6 train + 6 unlabelled
    expected = np.stack([_pil_half(img) for img in np.concatenate([train, unlabelled])])
    np.testing.assert_array_equal(_sorted_rows(images), _sorted_rows(expected))
    assert labelled.shape == (6, 48, 48, 3) and labels.shape == (6,)


def test_tfds_missing_offline_says_how_to_prepare(monkeypatch, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")

    class OfflineBuilder:
        def is_prepared(self):
            return False

        def download_and_prepare(self):
            raise ConnectionError("Name or service not known")

    monkeypatch.setattr(tfds, "builder", lambda name, data_dir=None: OfflineBuilder())
    with pytest.raises(data.DataError) as info:
        data.make_dataset("cifar10", 4, data_dir=str(tmp_path))
    message = str(info.value)
    for needle in ("--dataset=cifar10", str(tmp_path), "tfds build cifar10", "--data_dir",
                   "folder:", "ConnectionError"):
        assert needle in message


# --------------------------------------------------------------------------- real CIFAR-10 JPEGs


@pytest.fixture(scope="module")
def cifar_jpegs(tmp_path_factory):
    """30 test images per class extracted from the shared tarball (skip when it is absent)."""
    if not CIFAR_TARBALL.exists():
        pytest.skip(f"real-data test needs {CIFAR_TARBALL} (CIFAR-10 JPEG tarball), not present")
    root = tmp_path_factory.mktemp("cifar10")
    taken = {}
    with tarfile.open(CIFAR_TARBALL, "r:gz") as tar:
        for member in tar:
            parts = pathlib.PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) < 3 or parts[-3] != "test":
                continue
            if taken.get(parts[-2], 0) >= 30:
                if len(taken) == 10 and min(taken.values()) >= 30:
                    break
                continue
            taken[parts[-2]] = taken.get(parts[-2], 0) + 1
            target = root / parts[-2] / parts[-1]
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
    return root


def test_real_cifar10_jpegs_through_the_folder_loader(cifar_jpegs):
    name = f"folder:{cifar_jpegs}"
    classes = sorted(p.name for p in cifar_jpegs.iterdir())
    assert len(classes) == 10 and data.num_classes(name) == 10
    assert data.native_resolution(name) == 32
    images, labels = _collect(data.make_dataset(name, 64, shuffle=False, repeat=False,
                                                with_labels=True, drop_remainder=False))
    assert images.shape == (300, 32, 32, 3)
    assert np.bincount(labels).tolist() == [30] * 10
    # Spot check against PIL: the first file of the "ship" class, label = its sorted position.
    ship = sorted((cifar_jpegs / "ship").iterdir())[0]
    reference = _as_float(np.asarray(Image.open(ship).convert("RGB")))
    matches = images[labels == classes.index("ship")]
    assert min(np.abs(m - reference).max() for m in matches) <= 1 / 127.5 + 1e-6
    small = next(iter(data.make_dataset(name, 32, 16)))
    assert small.shape == (32, 16, 16, 3)


def _pil_half(image):
    """PIL's bilinear resize to half size: the official torchvision Resize."""
    side = image.shape[0] // 2
    return np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((side, side),
                                                                         Image.BILINEAR))


@pytest.mark.parametrize("src,dst,exact", [(32, 16, 1.0), (16, 8, 1.0), (96, 48, 1.0),
                                           (32, 8, 0.999)])
def test_resize_equals_pil_bilinear(src, dst, exact):
    """The official code's torchvision Resize: PIL's anti-aliased bilinear on uint8 images."""
    from PIL import Image

    images = np.random.default_rng(src + dst).integers(0, 256, (8, src, src, 3), np.uint8)
    pil = np.stack([np.asarray(Image.fromarray(im).resize((dst, dst), Image.BILINEAR))
                    for im in images])
    ours = data.resize_uint8(tf.constant(images), dst).numpy()
    diff = np.abs(ours.astype(int) - pil.astype(int))
    assert diff.max() <= 1
    assert (diff == 0).mean() >= exact
    np.testing.assert_array_equal(data.resize_uint8(tf.constant(images[0]), dst).numpy(), ours[0])
