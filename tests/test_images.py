"""autogan_tf.images: one to_uint8, grid builder, PNG encoder and writer for every caller."""

import subprocess
import sys

import numpy as np
import pytest

from autogan_tf import images


def test_to_uint8_numpy_and_bfloat16_tensor_agree():
    import tensorflow as tf

    x = np.linspace(-1.2, 1.2, 41, dtype=np.float32)
    expected = images.to_uint8(x)
    assert expected.dtype == np.uint8 and expected[0] == 0 and expected[-1] == 255
    # bfloat16 generator output is scaled in float32 (a bf16 product would miss levels).
    bf16 = tf.cast(tf.constant(x), tf.bfloat16)
    np.testing.assert_array_equal(images.to_uint8(bf16).numpy(),
                                  images.to_uint8(tf.cast(bf16, tf.float32).numpy()))


@pytest.mark.parametrize("shape", [(5, 4), (5, 4, 1), (5, 4, 3), (5, 4, 4)])
def test_png_round_trip(shape, tmp_path):
    image = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    data = images.encode_png(image)
    assert data.startswith(b"\x89PNG")
    rgb = image.reshape(5, 4, -1)[..., :3]
    rgb = np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb
    np.testing.assert_array_equal(images.decode_png(data), rgb)
    path = images.save_png(str(tmp_path / "a.png"), image)
    with open(path, "rb") as f:
        assert f.read() == data


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match="non-empty"):
        images.make_grid(np.zeros((0, 2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        images.encode_png(np.zeros((2, 2, 3), np.float32))


def test_importing_images_imports_neither_tensorflow_nor_pillow():
    code = ("import sys, autogan_tf.images; "
            "print(sorted({'tensorflow', 'PIL'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
