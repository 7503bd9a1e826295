"""Image utilities shared by training, search, evaluation, export and the serving clients.

* `to_uint8`: generator output in [-1, 1] -> uint8 pixels, as the official code.
* `make_grid`: a batch of images tiled into one image.
* `encode_png` / `decode_png`: uint8 image <-> PNG file contents.
* `save_png`: a uint8 image written as a PNG file, atomically.

Importing this module imports neither TensorFlow nor Pillow: `to_uint8`
imports TensorFlow only for a tensor, and the PNG functions import Pillow
when called, so the serving clients stay free of TensorFlow.
"""

from __future__ import annotations

import io
import os
import tempfile

import numpy as np

PNG_CHANNELS = (1, 3, 4)  # grey, RGB, RGBA


def to_uint8(images):
    """[-1, 1] generator output to uint8 pixels the way the official code does it.

    ``x * 127.5 + 127.5``, clipped to [0, 255], then cast (which truncates).
    The arithmetic is done in float32 whatever the input's type: bfloat16 has
    8 significant bits, too few to land on the right one of 256 levels.

    Args:
      images: a NumPy array, or anything TensorFlow converts to a tensor (a
        tensor of a generator, also symbolic inside a ``tf.function``).

    Returns:
      A uint8 NumPy array for a NumPy input, else a uint8 ``tf.Tensor``; the
      shape is unchanged.
    """
    if isinstance(images, np.ndarray):
        return np.clip(images.astype(np.float32) * 127.5 + 127.5, 0.0, 255.0).astype(np.uint8)
    import tensorflow as tf

    scaled = tf.clip_by_value(tf.cast(images, tf.float32) * 127.5 + 127.5, 0.0, 255.0)
    return tf.cast(scaled, tf.uint8)


def make_grid(images, nrow: int = 8, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """Tile a batch of images into one image, ``nrow`` per row, as torchvision's grid.

    Args:
      images: uint8 ``[N, H, W, C]`` or ``[N, H, W]`` (then C = 1), N >= 1.
      nrow: images per row (the grid has ``min(nrow, N)`` columns).
      padding: pixels of border around and between the images.
      pad_value: the border's (and the empty slots') pixel value.

    Returns:
      uint8 ``[rows * (H + padding) + padding, cols * (W + padding) + padding, C]``,
      image ``i`` in row ``i // cols``, column ``i % cols``.

    Raises:
      ValueError: the images are not a non-empty uint8 batch, or ``nrow < 1``.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"make_grid needs a non-empty batch of uint8 images [N, H, W, C], "
                         f"got {images.dtype} {images.shape}")
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    n, h, w, c = images.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c),
                   pad_value, np.uint8)
    for i, image in enumerate(images):
        top = padding + (i // cols) * (h + padding)
        left = padding + (i % cols) * (w + padding)
        grid[top:top + h, left:left + w] = image
    return grid


def _png_image(image) -> np.ndarray:
    """``image`` as uint8 ``[H, W]`` or ``[H, W, 3|4]``, the arrays Pillow writes as PNG."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in PNG_CHANNELS:
        raise ValueError(f"a PNG needs a uint8 [H, W, 1|3|4] or [H, W] image, got "
                         f"{image.dtype} {image.shape}")
    return image[..., 0] if image.shape[-1] == 1 else image


def encode_png(image) -> bytes:
    """The PNG file contents of one image (lossless: `decode_png` gives the pixels back).

    Args:
      image: uint8 ``[H, W, C]`` with C in 1, 3, 4 (grey, RGB, RGBA), or ``[H, W]``.

    Returns:
      The encoded bytes.

    Raises:
      ValueError: another dtype or shape.
    """
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(_png_image(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG file contents -> uint8 ``[H, W, 3]`` RGB (grey and alpha are converted).

    Args:
      data: the contents of a PNG file (Pillow would also read other formats it knows).

    Returns:
      A uint8 array ``[H, W, 3]``.
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def save_png(path: str, image) -> str:
    """Write one image as a PNG file; readers see the old file or the new one, never half.

    Args:
      path: the file to write; missing directories are created.
      image: as `encode_png` takes it.

    Returns:
      ``path``.

    Raises:
      ValueError: the image cannot be a PNG (nothing is written).
    """
    data = encode_png(image)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(dir=directory, prefix=f".{os.path.basename(path)}.",
                                      suffix=".tmp", delete=False)
    try:
        with tmp:  # flushed and synced before the rename, so a crash cannot leave half a file
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, path)
    except BaseException:
        if os.path.exists(tmp.name):
            os.remove(tmp.name)
        raise
    return path
