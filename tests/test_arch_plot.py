"""The architecture drawing: its layout against hand-written cells, the image, the CLI flag."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from autogan_tf import arch_plot
from autogan_tf.arch_plot import SkipEdge

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_RGB = (0xC0, 0x50, 0x4D)


def test_layout_of_the_papers_best_generator():
    # 1 0 1 1 | 1 0 0 1 1 | 1 0 1 0 3: every cell pre-activation without normalisation;
    # nearest, bilinear, nearest upsampling; shortcuts in cells 1 and 2; cell 2 takes
    # cell 1's feature, cell 3 takes both (official bit order: bit 0 = previous cell).
    cells, skips = arch_plot.architecture_layout("autogan_cifar10_a")
    pre_up = lambda up: ["ReLU", up, "conv 3x3"]  # noqa: E731
    assert [list(c.ops) for c in cells] == [
        pre_up("nearest up x2") + ["ReLU", "conv 3x3", "+ shortcut"],
        pre_up("bilinear up x2") + ["+ skip-ins", "ReLU", "conv 3x3", "+ shortcut"],
        pre_up("nearest up x2") + ["+ skip-ins", "ReLU", "conv 3x3"],
    ]
    assert [c.title for c in cells] == ["Cell 1: 4x4 -> 8x8, pre-activation",
                                        "Cell 2: 8x8 -> 16x16, pre-activation",
                                        "Cell 3: 16x16 -> 32x32, pre-activation"]
    assert [c.shortcut is not None for c in cells] == [True, True, False]
    assert skips == [SkipEdge(0, 1, 2, "bilinear x2, conv 1x1"),
                     SkipEdge(0, 2, 4, "nearest x4, conv 1x1"),
                     SkipEdge(1, 2, 2, "nearest x2, conv 1x1")]


def test_layout_of_post_activation_cells_with_norms_and_deconv():
    # cell 1: post, IN, deconv, no shortcut; cell 2: pre, BN, bilinear, skip from cell 1.
    cells, skips = arch_plot.architecture_layout("0 2 2 0 1 1 0 0 1", bottom_width=2)
    assert list(cells[0].ops) == ["deconv x2", "conv 3x3", "IN", "ReLU", "conv 3x3", "IN", "ReLU"]
    assert list(cells[1].ops) == ["BN", "ReLU", "bilinear up x2", "conv 3x3", "+ skip-ins",
                                  "BN", "ReLU", "conv 3x3"]
    assert cells[0].title.startswith("Cell 1: 2x2 -> 4x4")
    assert skips == [SkipEdge(0, 1, 2, "bilinear x2, conv 1x1")]


def _skip_pixels(image):
    return int(np.all(np.asarray(image) == SKIP_RGB, axis=-1).sum())


def test_drawing_shows_skips_only_where_the_arch_has_them():
    with_skips = arch_plot.draw_architecture("autogan_cifar10_a", gf_dim=256)
    without = arch_plot.draw_architecture("1 0 1 1 1 0 0 1 0 1 0 1 0 0")
    assert with_skips.mode == "RGB" and with_skips.width > 1000
    assert _skip_pixels(with_skips) > 500
    assert _skip_pixels(without) == 0
    array = arch_plot.architecture_array("autogan_cifar10_a")
    assert array.shape == (1, with_skips.height, with_skips.width, 3) and array.dtype == np.uint8


def test_bad_arch_is_an_arch_error():
    from autogan_tf import search_space as ss

    with pytest.raises(ss.ArchError):
        arch_plot.draw_architecture("1 0 1 1 1 0 0 1 7")


def _summary(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "autogan_tf.cli.summary", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def test_summary_plot_writes_the_png_and_rejects_bad_paths(tmp_path):
    path = tmp_path / "arch.png"
    out = _summary("--arch=autogan_cifar10_a", "--gf_dim=16", "--df_dim=16", f"--plot={path}")
    assert out.returncode == 0, out.stderr
    assert str(path) in out.stdout
    with Image.open(path) as image:
        assert image.format == "PNG" and _skip_pixels(image.convert("RGB")) > 500
    bad = _summary("--arch=autogan_cifar10_a", f"--plot={tmp_path}/arch.jpg")
    assert bad.returncode != 0 and "--plot" in bad.stderr and "must end in .png" in bad.stderr
    missing = _summary("--arch=autogan_cifar10_a", f"--plot={tmp_path}/no/such/arch.png")
    assert missing.returncode != 0 and "does not exist" in missing.stderr
