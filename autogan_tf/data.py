"""Image data sets for GAN training and evaluation, as ``tf.data`` pipelines.

Every data set named by the ``--dataset`` flag ends up as the same thing: uint8
RGB images at a *store* resolution plus int32 labels. Small data sets (CIFAR-10,
STL-10 at 48 px, ``shapes``, and image folders that fit ``IN_MEMORY_BYTES``)
are decoded once per process into memory, so each later epoch (and each
resolution of the progressive search: 8 -> 16 -> 32 px) is a cheap batched
gather + resize. Larger folders are streamed from disk with parallel decoding.

Names accepted by ``--dataset``:

* ``cifar10``, ``stl10``: TensorFlow Datasets (STL-10 ``train`` is the
  labelled train split plus the 100k unlabelled images, resized to 48x48 as in
  the AutoGAN paper).
* ``folder:PATH``: JPEG/PNG files under PATH (recursive). Sub-folder names are
  class labels (sorted -> 0..k-1); with no sub-folders every label is 0. If
  PATH holds both ``train/`` and ``test/`` they are the two splits.
* ``shapes``: coloured geometric shapes drawn procedurally from a seed, so the
  quick start and the tests need no download.

Images are centre-cropped to a square, resized as PIL's anti-aliased bilinear
filter (what the official code's torchvision ``Resize`` does), and delivered
as float32 NHWC in [-1, 1]. Greyscale images (with or without alpha) become RGB by
repeating the grey, RGBA images lose their alpha channel (as PIL's ``convert("RGB")``,
which the official code's torchvision loader applies). `describe` says in one line what
a run reads: how many images and classes, how they were cropped, resized and converted;
`critic_batches` logs it before training starts.
"""

from __future__ import annotations

import collections
import os
import re
import warnings

import numpy as np
from absl import logging

from autogan_tf import errors

DATASETS = ("cifar10", "stl10", "shapes")  # plus the "folder:PATH" form
SPLITS = ("train", "test")
BAD_IMAGE_POLICIES = ("error", "skip")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

_TFDS_NATIVE = {"cifar10": 32, "stl10": 48}
_TFDS_CLASSES = {"cifar10": 10, "stl10": 10}

SHAPE_CLASSES = ("circle", "square", "triangle", "ring", "cross", "diamond",
                 "horizontal_stripes", "vertical_stripes")
SHAPES_SPLIT_SIZES = {"train": 10_000, "test": 2_000}
SHAPES_SPLIT_SEEDS = {"train": 0, "test": 1}  # disjoint draws for the two splits
SHAPES_RESOLUTION = 32
# Bars across a stripes patch. Two, so that each bar and gap is 1.8-3.2 px wide at the
# quick start's 16 px: four were 0.9-1.6 px wide there, many pictures aliased into plain
# squares, and generators trained for minutes drew squares instead of stripes.
SHAPES_STRIPES = 2

# Decoded data sets up to this size are kept in memory (a few are cached per process).
IN_MEMORY_BYTES = 1 << 30
_CACHE_ENTRIES = 4
STREAM_SHUFFLE_BUFFER = 10_000
_DECODE_BATCH = 512


class DataError(errors.UserError):
    """A ``--dataset`` that cannot be loaded: bad name, missing data, unreadable image."""


class BadImageWarning(UserWarning):
    """Images that could not be decoded and were skipped (``on_bad_image='skip'``)."""


# --------------------------------------------------------------------------- names


def parse_dataset(name: str) -> tuple[str, str | None]:
    """Split a ``--dataset`` value into (kind, argument): ("folder", path) or ("cifar10", None).

    Args:
      name: the ``--dataset`` value; the kind is case-insensitive and a folder path may
        start with ``~``.

    Returns:
      ``(kind, argument)``: the kind is one of `DATASETS` or "folder"; the argument is the
      expanded folder path, or None.

    Raises:
      DataError: an empty value, an unknown name, or ``folder:`` without a path.
    """
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"--dataset is empty; use one of {_valid_names()}")
    text = name.strip()
    kind, sep, arg = text.partition(":")
    kind = kind.lower()
    if kind == "folder" and sep:
        if not arg.strip():
            raise DataError("--dataset=folder: needs a path, e.g. --dataset=folder:/data/faces")
        return "folder", os.path.expanduser(arg.strip())
    if not sep and kind in DATASETS:
        return kind, None
    raise DataError(f"--dataset={name!r} is not a known data set; use one of {_valid_names()}")


def _valid_names() -> str:
    return ", ".join(DATASETS + ("folder:PATH",))


def native_resolution(name: str) -> int:
    """Side of the square images the data set naturally provides (the default image_size).

    For a folder it is the shorter side of the first training image (read from its header).

    Args:
      name: a ``--dataset`` value.

    Raises:
      DataError: a bad name, or a folder without images.
    """
    kind, arg = parse_dataset(name)
    if kind in _TFDS_NATIVE:
        return _TFDS_NATIVE[kind]
    if kind == "shapes":
        return SHAPES_RESOLUTION
    paths, _, _ = _list_folder(arg, "train")
    return _image_side(paths[0])


def num_classes(name: str, data_dir=None) -> int:
    """Number of labels: 10 for the tfds sets, 8 for shapes, sub-folders (or 1) for folders.

    Args:
      name: a ``--dataset`` value.
      data_dir: unused (the tfds label counts are fixed); kept for a uniform signature.

    Raises:
      DataError: a bad name, or a folder that does not exist.
    """
    del data_dir  # the tfds label counts are fixed; kept for a uniform signature
    kind, arg = parse_dataset(name)
    if kind in _TFDS_CLASSES:
        return _TFDS_CLASSES[kind]
    if kind == "shapes":
        return len(SHAPE_CLASSES)
    return max(1, len(_folder_classes(arg)))


def num_images(name: str, split: str = "train", data_dir=None) -> int:
    """How many images a split of a data set holds (a folder: the image files found).

    The search's epoch (``--epoch_images=0``) follows it, so a folder of 2,000 pictures is
    not trained on for 50,000 images an "epoch".

    Args:
      name: a ``--dataset`` value.
      split: "train" or "test".
      data_dir: the TensorFlow Datasets directory (tfds data sets only).

    Raises:
      DataError: a bad name or split, a folder without images, or a tfds data set that is
        not on this machine.
    """
    if split not in SPLITS:
        raise DataError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    kind, arg = parse_dataset(name)
    if kind == "shapes":
        return SHAPES_SPLIT_SIZES[split]
    if kind == "folder":
        return len(_list_folder(arg, split)[0])
    splits = _tfds_builder(kind, data_dir).info.splits
    parts = ["train", "unlabelled"] if (kind, split) == ("stl10", "train") else [split]
    return sum(splits[part].num_examples for part in parts)


# --------------------------------------------------------------------------- pipelines


def make_dataset(name: str, batch_size: int, image_size: int | None = None, split: str = "train",
                 *, shuffle: bool = True, repeat: bool = True, seed: int = 0,
                 with_labels: bool = False, drop_remainder: bool = True,
                 on_bad_image: str = "error", data_dir: str | None = None,
                 max_images: int | None = None):
    """Batches of float32 [B, H, W, 3] images in [-1, 1] (and int32 labels with ``with_labels``).

    Deterministic for a given ``seed``. For ``stl10`` with ``with_labels`` the
    ``train`` split is the labelled 5,000 images only (the unlabelled ones have
    no class).

    Args:
      name: a ``--dataset`` value (see the module docstring).
      batch_size: images per batch.
      image_size: side of the square images (None: the data set's `native_resolution`).
      split: "train" or "test".
      shuffle: a new order at every epoch, decided by ``seed`` and the epoch's number
        alone; with ``repeat=False`` every pass over the dataset is epoch 0's order (to
        reshuffle per epoch, repeat and count the steps, as `train_classifier` does).
      repeat: repeat the data forever (False: one pass).
      seed: the shuffling seed.
      with_labels: yield ``(images, labels)`` rather than images.
      drop_remainder: drop a last, smaller batch.
      on_bad_image: "error" stops at an unreadable image of a folder, "skip" skips it with
        a `BadImageWarning`.
      data_dir: the TensorFlow Datasets directory (tfds data sets only).
      max_images: use at most this many images (None: all).

    Returns:
      A prefetched `tf.data.Dataset`.

    Raises:
      DataError: the data set cannot be found, loaded or decoded, or ``split`` or
        ``on_bad_image`` is unknown.
      errors.UserError: a bad ``batch_size``, ``image_size`` or ``max_images``.
    """
    import tensorflow as tf

    ds = _uint8_batches(name, batch_size, image_size, split, shuffle=shuffle, repeat=repeat,
                        seed=seed, with_labels=with_labels, drop_remainder=drop_remainder,
                        on_bad_image=on_bad_image, data_dir=data_dir, max_images=max_images)

    def to_float(images, labels):
        images = tf.cast(images, tf.float32) / 127.5 - 1.0
        return (images, labels) if with_labels else images

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def critic_batches(config, image_size: int, seed: int, with_labels: bool = False):
    """The real images of GAN training: one ``[n_critic, d_batch_size, H, W, 3]`` batch per
    generator iteration (a batch per discriminator step).

    Args:
      config: a `config.SearchConfig` or `config.TrainConfig` (its dataset, data_dir,
        on_bad_image, d_batch_size and n_critic).
      image_size: side length of the images.
      seed: the shuffling seed.
      with_labels: yield ``(images, labels [n_critic, d_batch_size])`` (a conditional GAN's).

    Returns:
      An iterator; checkpoint it to resume the same order after a restart.
    """
    ds = make_dataset(config.dataset, config.d_batch_size, image_size, split="train", seed=seed,
                      on_bad_image=config.on_bad_image, data_dir=config.data_dir,
                      with_labels=with_labels)
    logging.info("%s", describe(config.dataset, image_size, on_bad_image=config.on_bad_image,
                                data_dir=config.data_dir))
    return iter(ds.batch(config.n_critic, drop_remainder=True).prefetch(2))


def split_labels(batch):
    """``(images, labels)`` of a `critic_batches` element; ``labels`` None without them.

    Args:
      batch: images, or an ``(images, labels)`` pair.
    """
    if isinstance(batch, tuple):
        return batch
    return batch, None


def describe(name: str, image_size: int | None = None, split: str = "train", *,
             on_bad_image: str = "error", data_dir: str | None = None) -> str:
    """One line saying what a run reads from a data set, so a user sees at once whether a
    folder was read as intended.

    For example ``folder:/data/faces: 5,000 images in 10 classes (train split), 48x64 to
    500x375 px, centre-cropped to squares and resized to 32x32 px; 12 greyscale images
    converted to RGB``. Sizes are width x height as stored. A folder's images are decoded
    (and cached) as training would, so this costs nothing extra when training follows.

    Args:
      name: a ``--dataset`` value.
      image_size: the side the images are resized to (None: the `native_resolution`).
      split: "train" or "test".
      on_bad_image: as `make_dataset`.
      data_dir: the TensorFlow Datasets directory (tfds data sets only).

    Returns:
      The summary, without a line end.

    Raises:
      DataError: as `make_dataset`.
    """
    kind, arg = parse_dataset(name)
    _check_arguments(1, image_size, split, on_bad_image, None)
    size = image_size or native_resolution(name)
    source = _source(name, size, split, on_bad_image=on_bad_image, data_dir=data_dir,
                     max_images=None, with_labels=False)
    count = len(source.labels)
    if kind != "folder":
        return (f"{name}: {count:,} images in {num_classes(name)} classes ({split} split), "
                f"{_resized(source.images.shape[1:3], size)}")
    paths, _, classes = _list_folder(arg, split)
    has_splits = len(set(_split_roots(arg).values())) == 2
    text = (f"{name}: {count:,} image{'s' * (count != 1)} "
            + (f"in {len(classes)} class{'es' * (len(classes) != 1)}" if classes
               else "without class sub-folders")
            + (f" ({split} split)" if has_splits else "")
            + f", {_stored_sizes(source.stored)}, {_cropped(source.stored, size)}")
    converted = _converted(source.stored)
    if converted:
        text += f"; {converted} converted to RGB"
    if len(paths) > count:
        text += f"; {len(paths) - count:,} unreadable file(s) skipped"
    return text


def _stored_sizes(stored) -> str:
    """"WxH px" when every image has that size, else "WxH to WxH px" (smallest to largest)."""
    areas = stored[:, 0] * stored[:, 1]
    small, large = stored[np.argmin(areas)], stored[np.argmax(areas)]
    if np.all(stored[:, :2] == small[:2]):
        return f"{small[1]}x{small[0]} px"
    return f"{small[1]}x{small[0]} to {large[1]}x{large[0]} px"


def _cropped(stored, size: int) -> str:
    """How images of ``stored`` sizes become ``size`` squares (`resize_uint8`)."""
    not_square = int(np.sum(stored[:, 0] != stored[:, 1]))
    if not_square == 0:
        crop = ""
    elif not_square == len(stored):
        crop = "centre-cropped to squares and "
    else:
        crop = (f"centre-cropped to squares ({not_square:,} "
                f"{'was' if not_square == 1 else 'were'} not square) and ")
    return crop + _resized(stored[:, :2], size)


def _resized(sides, size: int) -> str:
    """"resized to SxS px", or "kept at SxS px" when every image already has that size."""
    if np.all(np.asarray(sides) == size):
        return f"kept at {size}x{size} px"
    return f"resized to {size}x{size} px"


def _converted(stored) -> str:
    """"12 greyscale and 3 RGBA images" converted to RGB (empty: none were)."""
    counts = [(int(np.sum(stored[:, 2] <= 2)), "greyscale"),
              (int(np.sum(stored[:, 2] == 4)), "RGBA")]
    counts = [(n, what) for n, what in counts if n]
    if not counts:
        return ""
    total = sum(n for n, _ in counts)
    return " and ".join(f"{n:,} {what}" for n, what in counts) + f" image{'s' * (total != 1)}"


def make_uint8_dataset(name, batch_size, image_size=None, split="train", *, data_dir=None,
                       max_images=None, on_bad_image="error", with_labels=False):
    """Every image once, in a fixed order, as uint8 [B, H, W, 3] (last batch may be short).

    Meant for FID reference statistics, which must see the real pixels exactly once.

    Args:
      name: a ``--dataset`` value.
      batch_size: images per batch.
      image_size: side of the square images (None: the data set's `native_resolution`).
      split: "train" or "test".
      data_dir: the TensorFlow Datasets directory (tfds data sets only).
      max_images: use at most this many images (None: all).
      on_bad_image: "error" or "skip", as in `make_dataset`.
      with_labels: yield ``(images, int32 labels)`` (per-class statistics, intra-FID).

    Returns:
      A prefetched `tf.data.Dataset` of uint8 image batches (no labels unless asked).

    Raises:
      DataError: as `make_dataset`.
    """
    import tensorflow as tf

    ds = _uint8_batches(name, batch_size, image_size, split, shuffle=False, repeat=False,
                        seed=0, with_labels=with_labels, drop_remainder=False,
                        on_bad_image=on_bad_image, data_dir=data_dir, max_images=max_images)
    if with_labels:
        return ds.prefetch(tf.data.AUTOTUNE)

    def images_only(images, labels):
        del labels
        return images

    ds = ds.map(images_only)
    return ds.prefetch(tf.data.AUTOTUNE)


def _uint8_batches(name, batch_size, image_size, split, *, shuffle, repeat, seed, with_labels,
                   drop_remainder, on_bad_image, data_dir, max_images):
    """(uint8 images, int32 labels) batches at ``image_size``: the shared core of both APIs."""
    _check_arguments(batch_size, image_size, split, on_bad_image, max_images)
    size = image_size or native_resolution(name)
    source = _source(name, size, split, on_bad_image=on_bad_image, data_dir=data_dir,
                     max_images=max_images, with_labels=with_labels)
    if isinstance(source, _InMemory):
        return _in_memory_batches(source, batch_size, size, shuffle, repeat, seed, drop_remainder)
    return _streamed_batches(source, batch_size, size, shuffle, repeat, seed, drop_remainder)


def _source(name, size, split, *, on_bad_image, data_dir, max_images, with_labels):
    """The decoded (cached) images of a data set's split: an `_InMemory` or a `_Streamed`."""
    kind, arg = parse_dataset(name)
    if kind == "folder":
        return _folder_source(arg, split, size, on_bad_image, max_images)
    if kind == "shapes":
        return _shapes_source(split, max_images)
    return _tfds_source(kind, split, data_dir, max_images, labelled_only=with_labels)


def _check_arguments(batch_size, image_size, split, on_bad_image, max_images):
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise errors.UserError(f"batch_size must be a positive integer, got {batch_size!r}")
    if image_size is not None and (not isinstance(image_size, (int, np.integer)) or image_size < 1):
        raise errors.UserError(f"image_size must be a positive integer or None, got {image_size!r}")
    if split not in SPLITS:
        raise DataError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    if on_bad_image not in BAD_IMAGE_POLICIES:
        raise DataError(f"--on_bad_image={on_bad_image!r}: use one of {', '.join(BAD_IMAGE_POLICIES)}")
    if max_images is not None and max_images < 1:
        raise errors.UserError(f"max_images must be positive or None, got {max_images!r}")


# uint8 [N,s,s,3], int32 [N]; a folder's also int [N, 3]: height, width, channels as stored
_InMemory = collections.namedtuple("_InMemory", "images labels stored", defaults=(None,))
# files decoded on the fly; ``stored`` as above
_Streamed = collections.namedtuple("_Streamed", "paths labels stored", defaults=(None,))


def _in_memory_batches(source, batch_size, size, shuffle, repeat, seed, drop_remainder):
    """Shuffle indices (a full permutation per epoch), then gather and resize whole batches."""
    import tensorflow as tf

    images = tf.convert_to_tensor(source.images)
    labels = tf.convert_to_tensor(source.labels)
    count = int(source.images.shape[0])
    ds = _indices(count, shuffle, repeat, seed).batch(batch_size, drop_remainder=drop_remainder)

    def gather(index):
        return resize_uint8(tf.gather(images, index), size), tf.gather(labels, index)

    return ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)


def _indices(count: int, shuffle: bool, repeat: bool, seed: int):
    """The int64 indices of ``count`` images in the order they are read: ``0..count-1``
    once or forever, or a new permutation per epoch that ``(seed, epoch)`` alone decides.

    Not ``Dataset.shuffle(seed=...)``: it pairs its seed with TensorFlow's global seed, so
    the order changed whenever anything in the process had set one (as
    ``keras.utils.set_random_seed`` does): the quick start's training, which follows the
    training of its classifier, drew other batches than ``autogan-train`` with the same
    seed, and a rerun that found the classifier already trained other batches than the
    first run.
    """
    import tensorflow as tf

    if not shuffle:
        ds = tf.data.Dataset.range(count)
        return ds.repeat() if repeat else ds
    epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)

    def permutation(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(order)

    ds = epochs.flat_map(permutation)
    # One pass: its length, which flat_map hides, lets Keras count an epoch's steps.
    return ds if repeat else ds.apply(tf.data.experimental.assert_cardinality(count))


def _streamed_batches(source, batch_size, size, shuffle, repeat, seed, drop_remainder):
    """Shuffle file names (cheap), then decode, crop and resize each file in parallel."""
    import tensorflow as tf

    paths = tf.constant(source.paths)
    labels = tf.constant(source.labels, tf.int32)

    def load(index):
        return _load_file(tf.gather(paths, index), size), tf.gather(labels, index)

    ds = _indices(len(source.paths), shuffle, repeat, seed)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=drop_remainder)


# --------------------------------------------------------------------------- image ops


def pil_bilinear_resize(images, size: int):
    """uint8 images ``[..., H, W, 3]`` -> ``[..., size, size, 3]`` as PIL's ``BILINEAR`` resize.

    This is what the official code's ``torchvision.transforms.Resize`` does to
    its PIL images (search stages at 8 and 16 px, STL-10 96 -> 48): a
    triangle filter widened by the scale when shrinking (anti-aliased), the
    plain bilinear one when enlarging, applied separably -- width first, then
    height -- each pass rounded to uint8 as PIL's integer pipeline does.
    TensorFlow's ``resize(..., "bilinear", antialias=True)`` computes the same
    filter; with the two rounded passes the result equals Pillow's bit for bit
    on 32->16, 16->8 and 96->48, and on 99.95% of the pixels at 32->8 (the
    rest one level off: PIL's fixed-point weights). Measured in tests/test_data.py.

    Args:
      images: uint8 images, ``[..., H, W, 3]``.
      size: the side of the result.

    Returns:
      A uint8 tensor ``[..., size, size, 3]``.
    """
    import tensorflow as tf

    def rounded(x):
        return tf.floor(tf.clip_by_value(x, 0.0, 255.0) + 0.5)

    pixels = tf.cast(images, tf.float32)
    height = tf.shape(pixels)[-3]
    pixels = rounded(tf.image.resize(pixels, tf.stack([height, size]), method="bilinear",
                                     antialias=True))
    pixels = rounded(tf.image.resize(pixels, [size, size], method="bilinear", antialias=True))
    return tf.cast(pixels, tf.uint8)


def resize_uint8(images, size: int):
    """Square-crop and resize uint8 images ([H,W,3] or [B,H,W,3]) to ``size``, still uint8.

    The resize is PIL's anti-aliased bilinear (`pil_bilinear_resize`), as the
    official code's torchvision ``Resize``.

    Images that are already square at ``size`` are returned as they are.

    Args:
      images: uint8 images, ``[H, W, 3]`` or ``[B, H, W, 3]``.
      size: the side of the result.

    Returns:
      A uint8 tensor ``[..., size, size, 3]``.
    """
    import tensorflow as tf

    height, width = images.shape[-3], images.shape[-2]
    static_side = height if (height is not None and height == width) else None
    if static_side is None:  # unknown or non-square: crop the centre square first
        shape = tf.shape(images)
        height, width = shape[-3], shape[-2]
        side = tf.minimum(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        images = images[..., top:top + side, left:left + side, :]
    if static_side == size:
        return images
    return pil_bilinear_resize(images, size)


def to_rgb(image):
    """uint8 images with 1 to 4 channels as RGB, as PIL's ``convert("RGB")``.

    Greyscale (1 channel) and greyscale with alpha (2) repeat the grey in R, G and B;
    RGB (3) is kept; RGBA (4) drops the alpha channel (no blending with a background).

    Args:
      image: ``[..., C]`` with C in 1..4 (known or not when traced).

    Returns:
      ``[..., 3]``, same dtype.
    """
    import tensorflow as tf

    grey = tf.shape(image)[-1] < 3
    return tf.gather(image, tf.where(grey, [0, 0, 0], [0, 1, 2]), axis=-1)


def _decode_stored(contents):
    """An image file's bytes -> (uint8 RGB ``[H, W, 3]``, the channels the file stores:
    1 grey, 2 grey and alpha, 3 RGB, 4 RGBA)."""
    import tensorflow as tf

    def jpeg():
        # The accurate integer IDCT (TF's default is the fast one), so pixels match what
        # PIL/libjpeg give other tools; libjpeg converts grey (and CMYK) itself.
        # A CMYK JPEG (4 channels) counts as colour, not as RGBA.
        return (tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
                tf.minimum(tf.io.extract_jpeg_shape(contents)[2], 3))

    def other():  # PNG (and anything decode_image reads): as stored, then `to_rgb`
        image = tf.io.decode_image(contents, channels=0, expand_animations=False,
                                   dtype=tf.uint8)
        return to_rgb(image), tf.shape(image)[2]

    image, channels = tf.cond(tf.io.is_jpeg(contents), jpeg, other)
    image.set_shape([None, None, 3])
    return image, channels


def _decode(contents):
    """An image file's bytes -> uint8 RGB ``[H, W, 3]``."""
    return _decode_stored(contents)[0]


def _load_file(path, size):
    import tensorflow as tf

    return resize_uint8(_decode(tf.io.read_file(path)), size)


# --------------------------------------------------------------------------- folders


def _folder_source(path, split, size, on_bad_image, max_images):
    paths, labels, _ = _list_folder(path, split)
    if max_images is not None and max_images < len(paths):
        # A fixed spread-out subset (not the first class only), the same on every call.
        keep = np.sort(np.random.default_rng(0).permutation(len(paths))[:max_images])
        paths, labels = [paths[i] for i in keep], labels[keep]
    store = _store_size(path, paths, size)
    key = ("folder", os.path.abspath(path), split, store, max_images, on_bad_image, len(paths))
    cached = _cache_get(key)
    if cached is not None:
        return cached
    good, images, stored = _decode_all(paths, store, on_bad_image)
    if store is None:
        source = _Streamed(np.asarray([paths[i] for i in good]), labels[good], stored)
    else:
        source = _InMemory(images, labels[good], stored)
    return _cache_put(key, source)


def _store_size(path, paths, size):
    """Resolution to keep in memory (native if it fits, else the requested size), or None to stream."""
    native = native_resolution("folder:" + path)
    for side in (max(native, size), size):
        if len(paths) * side * side * 3 <= IN_MEMORY_BYTES:
            return side
    return None


def _decode_all(paths, size, on_bad_image):
    """Decode every file once (in parallel).

    This pass is also the validation of the folder: a file that fails to decode
    stops the run with its path, or is skipped with a warning.

    Returns:
      ``(good, images, stored)``: the indices of the files that decoded; with ``size``
      their pixels at ``size`` (else None); int32 ``[len(good), 3]``: their height, width
      and channels as stored (`describe` reports them).
    """
    import tensorflow as tf

    def load(index, path):
        image, channels = _decode_stored(tf.io.read_file(path))
        stored = tf.concat([tf.shape(image)[:2], [channels]], axis=0)
        pixels = resize_uint8(image, size) if size else tf.zeros([0], tf.uint8)
        return index, stored, pixels

    ds = tf.data.Dataset.from_tensor_slices(np.asarray(paths)).enumerate()
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    indices, shapes, chunks = [], [], []
    for index, stored, pixels in ds.batch(_DECODE_BATCH).prefetch(2).as_numpy_iterator():
        indices.append(index)
        shapes.append(stored)
        chunks.append(pixels)
    good = np.concatenate(indices) if indices else np.zeros([0], np.int64)
    _report_bad(paths, good, on_bad_image)
    stored = np.concatenate(shapes) if shapes else np.zeros([0, 3], np.int32)
    images = None
    if size:
        images = np.concatenate(chunks) if chunks else np.zeros([0, size, size, 3], np.uint8)
    return good, images, stored


def _report_bad(paths, good, on_bad_image):
    bad = np.setdiff1d(np.arange(len(paths)), good)
    if not len(bad):
        return
    first = paths[bad[0]]
    reason = _decode_error(first)
    if on_bad_image == "error" or len(bad) == len(paths):
        raise DataError(
            f"--dataset: cannot read image {first} ({reason}); {len(bad)} of {len(paths)} files "
            f"are unreadable. Remove them or pass --on_bad_image=skip.")
    listed = ", ".join(paths[i] for i in bad[:5]) + (" ..." if len(bad) > 5 else "")
    warnings.warn(f"--dataset: skipped {len(bad)} unreadable image(s): {listed} "
                  f"(first error: {reason})", BadImageWarning, stacklevel=4)


def _decode_error(path):
    """The decoder's message for one file (re-run eagerly, only after the fast pass failed)."""
    import tensorflow as tf

    try:
        _decode(tf.io.read_file(path))
    except (tf.errors.OpError, ValueError) as err:
        message = getattr(err, "message", str(err)).strip().splitlines()[0]
        # TensorFlow's wrapping ("{{function_node ...}} ... [Op:DecodeJpeg]") says nothing
        # a user needs.
        return re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:\w+\]", "", message) or "failed to decode"
    return "failed to decode"


def _is_image_name(name):
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _scan(root):
    """Image files under ``root`` grouped by their top-level sub-folder ('' for files in root)."""
    groups = collections.defaultdict(list)
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = os.path.relpath(folder, root)
        group = "" if rel == "." else rel.split(os.sep)[0]
        groups[group].extend(os.path.join(folder, f) for f in sorted(files) if _is_image_name(f))
    return {g: files for g, files in groups.items() if files}


def _split_roots(path):
    """{split: root}: PATH/train and PATH/test when both exist, else PATH for every split."""
    if not os.path.isdir(path):
        raise DataError(f"--dataset=folder:{path}: no such directory")
    train, test = os.path.join(path, "train"), os.path.join(path, "test")
    if os.path.isdir(train) and os.path.isdir(test):
        return {"train": train, "test": test}
    return {split: path for split in SPLITS}


def _folder_classes(path):
    """Sorted class names: sub-folders (of either split root) that contain images."""
    names = set()
    for root in set(_split_roots(path).values()):
        names.update(g for g in _scan(root) if g)
    return sorted(names)


def _list_folder(path, split):
    """(paths, int32 labels, class names) of one split of a folder data set."""
    roots = _split_roots(path)
    groups = _scan(roots[split])
    classes = _folder_classes(path)
    if not groups:
        raise DataError(f"--dataset=folder:{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) "
                        f"found under {roots[split]}")
    if not classes:
        files = groups[""]
        return files, np.zeros([len(files)], np.int32), []
    loose = groups.pop("", [])
    if loose:
        warnings.warn(f"--dataset=folder:{path}: ignoring {len(loose)} image(s) outside the class "
                      f"sub-folders, e.g. {loose[0]}", BadImageWarning, stacklevel=3)
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = groups.get(name, [])
        paths.extend(files)
        labels.extend([label] * len(files))
    return paths, np.asarray(labels, np.int32), classes


def _image_side(path):
    """Shorter side of one image from its header (32 when the header cannot be read)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(min(image.size))
    except (OSError, ValueError):
        return 32


# --------------------------------------------------------------------------- tfds


def _tfds_source(name, split, data_dir, max_images, labelled_only):
    key = ("tfds", name, split, data_dir, max_images, labelled_only)
    cached = _cache_get(key)
    if cached is not None:
        return cached
    import tensorflow as tf

    builder = _tfds_builder(name, data_dir)
    parts = ["train", "unlabelled"] if (name, split) == ("stl10", "train") and not labelled_only \
        else [split]
    ds = None
    for part in parts:
        part_ds = builder.as_dataset(split=part, shuffle_files=False)
        ds = part_ds if ds is None else ds.concatenate(part_ds)
    if max_images is not None:
        ds = ds.take(max_images)
    size = _TFDS_NATIVE[name]
    def example(record):
        return resize_uint8(record["image"], size), tf.cast(record["label"], tf.int32)

    ds = ds.map(example, num_parallel_calls=tf.data.AUTOTUNE)
    images, labels = [], []
    for image_batch, label_batch in ds.batch(_DECODE_BATCH).prefetch(2).as_numpy_iterator():
        images.append(image_batch)
        labels.append(label_batch)
    if not images:
        raise DataError(f"--dataset={name}: split {split!r} is empty in data_dir={data_dir}")
    return _cache_put(key, _InMemory(np.concatenate(images), np.concatenate(labels)))


def _tfds_builder(name, data_dir):
    """A prepared tfds builder, or a DataError that says how to get the data onto this machine."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    try:
        builder.download_and_prepare()
    except Exception as err:  # noqa: BLE001 - network, missing extras, checksum: all mean "not here"
        where = data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
        raise DataError(
            f"--dataset={name}: the TensorFlow Datasets copy of {name} is not in data_dir={where} "
            f"and could not be downloaded ({type(err).__name__}: {err}). On a machine with internet "
            f"run `tfds build {name} --data_dir=DIR`, copy DIR here and pass --data_dir=DIR; or "
            f"point --dataset=folder:PATH at a folder of JPEG/PNG images.") from err
    return builder


# --------------------------------------------------------------------------- shapes


def _shapes_source(split, max_images):
    count = SHAPES_SPLIT_SIZES[split]
    key = ("shapes", split, count)
    source = _cache_get(key) or _cache_put(
        key, _InMemory(*make_shapes(count, SHAPES_RESOLUTION, SHAPES_SPLIT_SEEDS[split])))
    if max_images is not None:
        source = _InMemory(source.images[:max_images], source.labels[:max_images])
    return source


def make_shapes(num_images: int, image_size: int = 32, seed: int = 0):
    """Labelled pictures of one coloured shape on a tinted gradient: (uint8 [N,S,S,3], int32 [N]).

    Classes are ``SHAPE_CLASSES`` in equal numbers (+-1). Position, size and
    colours are random but fixed by ``seed``; the geometry is defined in units of
    the image side, so a seed draws the same pictures at any ``image_size``.
    Edges are anti-aliased from signed distances, so small sizes stay smooth.

    Args:
      num_images: how many pictures.
      image_size: their side in pixels.
      seed: the seed of the positions, sizes, colours and class order.

    Returns:
      ``(images, labels)``: uint8 ``[N, S, S, 3]`` and int32 ``[N]`` indices into
      `SHAPE_CLASSES`.

    Raises:
      ValueError: ``num_images`` is negative or ``image_size`` below 1.
    """
    if num_images < 0 or image_size < 1:
        raise ValueError(f"need num_images >= 0 and image_size >= 1, got {num_images}, {image_size}")
    rng = np.random.default_rng(seed)
    n = num_images
    labels = rng.permutation(np.arange(n) % len(SHAPE_CLASSES)).astype(np.int32)
    half = rng.uniform(0.22, 0.40, n)  # half extent of the shape, in image sides
    centre = rng.uniform(0.02 + half[:, None], 0.98 - half[:, None], (n, 2))
    base = rng.uniform(0.0, 1.0, (n, 3))
    tint = np.clip(base + rng.uniform(-0.15, 0.15, (n, 3)), 0.0, 1.0)
    angle = rng.uniform(0.0, 2 * np.pi, n)
    # Opposite side of the colour wheel from the background, per channel: always visible.
    colour = (base + 0.5 + rng.uniform(-0.2, 0.2, (n, 3))) % 1.0

    grid = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    images = np.empty((n, image_size, image_size, 3), np.uint8)
    for label in range(len(SHAPE_CLASSES)):
        idx = np.flatnonzero(labels == label)
        if not len(idx):
            continue
        dx = xs[None] - centre[idx, 0, None, None]
        dy = ys[None] - centre[idx, 1, None, None]
        distance = _shape_distance(SHAPE_CLASSES[label], dx, dy, half[idx, None, None])
        cover = np.clip(0.5 - distance * image_size, 0.0, 1.0)[..., None]
        ramp = np.clip(0.5 + (xs[None] - 0.5) * np.cos(angle[idx, None, None])
                       + (ys[None] - 0.5) * np.sin(angle[idx, None, None]), 0.0, 1.0)[..., None]
        background = base[idx, None, None] * (1 - ramp) + tint[idx, None, None] * ramp
        pixels = background * (1 - cover) + colour[idx, None, None] * cover
        images[idx] = np.round(pixels * 255).astype(np.uint8)
    return images, labels


def _shape_distance(shape, dx, dy, h):
    """Signed distance (in image sides, negative inside) from the shape's outline."""
    ax, ay = np.abs(dx), np.abs(dy)
    square = np.maximum(ax, ay) - h
    if shape == "circle":
        return np.hypot(dx, dy) - h
    if shape == "square":
        return square
    if shape == "diamond":
        return (ax + ay - h) / np.sqrt(2.0)
    if shape == "ring":
        return np.abs(np.hypot(dx, dy) - 0.7 * h) - 0.3 * h
    if shape == "cross":
        arm = 0.3 * h
        return np.minimum(np.maximum(ax - h, ay - arm), np.maximum(ax - arm, ay - h))
    if shape == "triangle":  # equilateral, apex up (y grows downwards), inradius h / 2
        right = np.sqrt(0.75) * dx - 0.5 * (dy + h)
        left = -np.sqrt(0.75) * dx - 0.5 * (dy + h)
        return np.maximum(np.maximum(right, left), dy - 0.5 * h)
    if shape in ("horizontal_stripes", "vertical_stripes"):
        period = 2.0 * h / SHAPES_STRIPES  # a bar and a gap per period
        along = dy if shape == "horizontal_stripes" else dx
        stripes = (np.abs((along / period) % 1.0 - 0.5) - 0.25) * period
        return np.maximum(square, stripes)
    raise ValueError(f"unknown shape {shape!r}")


# --------------------------------------------------------------------------- cache

_CACHE: "collections.OrderedDict[tuple, object]" = collections.OrderedDict()


def _cache_get(key):
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    return None


def _cache_put(key, value):
    _CACHE[key] = value
    while len(_CACHE) > _CACHE_ENTRIES:
        _CACHE.popitem(last=False)
    return value


def clear_cache():
    """Forget decoded data sets (tests; or to free memory between phases)."""
    _CACHE.clear()
