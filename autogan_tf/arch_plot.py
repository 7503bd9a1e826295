"""Draw a generator architecture the way the AutoGAN paper's Figure 3 does.

The drawing reads left to right as the generator runs: ``z`` and the linear
layer, one box per cell listing its operations top to bottom in the order they
run, the output block, the image. Inside a cell, the in-cell shortcut is the
line on the box's right side; skip connections between cells are dashed lines
under the boxes, from the cell whose feature is taken (its ``h``, after the
first block and its own skip-ins) to the cell that adds it, labelled with the
upsampling factor. The ops and edges come from `architecture_layout`, plain
data that tests compare with a hand-built case; `draw_architecture` only
renders them with Pillow (no TensorFlow, no matplotlib).

Used by ``autogan-summary --plot=FILE`` and, at the end of a search, for the
found architecture (``arch.png`` in the search directory and TensorBoard).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from autogan_tf import search_space as ss

_UP_LABELS = {"bilinear": "bilinear up x2", "nearest": "nearest up x2", "deconv": "deconv x2"}
_NORM_LABELS = {"bn": "BN", "in": "IN", "none": None}
SKIP_ADD = "+ skip-ins"
SHORTCUT_ADD = "+ shortcut"


@dataclasses.dataclass(frozen=True)
class CellLayout:
    """One cell as drawn: a title, its ops top to bottom, and its shortcut label (or None).

    Attributes:
      title: ``"Cell i: in -> out, pre-activation"`` (or post-activation).
      ops: the op labels in the order they run.
      shortcut: a description of the in-cell shortcut, None when the cell has none.
    """

    title: str
    ops: tuple[str, ...]
    shortcut: str | None


@dataclasses.dataclass(frozen=True)
class SkipEdge:
    """A skip connection: cell ``source`` (0-based) feeds cell ``target``, upsampled ``factor`` x.

    Attributes:
      source: the cell whose feature is taken (0-based).
      target: the cell that adds it (0-based).
      factor: the upsampling factor, ``2 ** (target - source)``.
      label: the text drawn next to the edge (upsampling and the 1x1 conv).
    """

    source: int
    target: int
    factor: int
    label: str


def _block(conv_type: str, norm: str | None, up: str | None) -> list[str]:
    """Ops of one block: pre-activation norm -> ReLU -> [up] -> conv, post-activation the reverse."""
    conv = [up] if up else []
    conv.append("conv 3x3")
    act = ([norm] if norm else []) + ["ReLU"]
    return act + conv if conv_type == "pre" else conv + act


def _cell_ops(cell: ss.CellSpec) -> list[str]:
    norm = _NORM_LABELS[cell.norm_type]
    ops = _block(cell.conv_type, norm, _UP_LABELS[cell.up_type])
    if cell.skip_sources:
        ops.append(SKIP_ADD)
    ops += _block(cell.conv_type, norm, None)
    if cell.shortcut:
        ops.append(SHORTCUT_ADD)
    return ops


def _shortcut_label(cell: ss.CellSpec) -> str:
    return f"{SHORTCUT_ADD} ({_UP_LABELS[cell.up_type].replace(' up', '')}, 1x1)"


def architecture_layout(arch, bottom_width: int = 4) -> tuple[list[CellLayout], list[SkipEdge]]:
    """The cells and skip connections of ``arch`` (anything `parse_arch` takes) as drawn.

    Args:
        arch: an `Arch`, an alias such as ``"autogan_cifar10_a"`` or a vector string.
        bottom_width: side of the first feature map, for the resolutions in the titles.

    Returns:
        ``(cells, skips)``: a `CellLayout` per cell and a `SkipEdge` per skip connection,
        sorted by target then source.
    """
    arch = ss.parse_arch(arch)
    cells, skips = [], []
    for cell in arch.cells:
        side_in = bottom_width * 2 ** cell.index
        kind = "pre-activation" if cell.conv_type == "pre" else "post-activation"
        shortcut = f"shortcut: {_UP_LABELS[cell.up_type]}, conv 1x1" if cell.shortcut else None
        cells.append(CellLayout(f"Cell {cell.index + 1}: {side_in}x{side_in} -> "
                                f"{2 * side_in}x{2 * side_in}, {kind}",
                                tuple(_cell_ops(cell)), shortcut))
        for source in cell.skip_sources:
            factor = 2 ** (cell.index - source)
            up = "deconv" if cell.up_type == "deconv" else cell.up_type
            skips.append(SkipEdge(source, cell.index, factor, f"{up} x{factor}, conv 1x1"))
    return cells, skips


# -- rendering ------------------------------------------------------------------
_FONT_SIZE = 14
_CHIP_H, _CHIP_GAP = 24, 8
_CELL_W, _GAP = 250, 70
_END_W = 150
_TOP, _MARGIN = 60, 24
_INK, _FRAME, _CHIP, _ADD, _SKIP = "#222222", "#4a6fa5", "#e8eef7", "#fbe3c0", "#c0504d"


def _font(size=_FONT_SIZE):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


def _arrow(draw, start, end, fill=_INK, width=2):
    draw.line([start, end], fill=fill, width=width)
    (x0, y0), (x1, y1) = start, end
    direction = np.array([x1 - x0, y1 - y0], float)
    direction /= max(np.linalg.norm(direction), 1e-6)
    normal = np.array([-direction[1], direction[0]])
    tip = np.array([x1, y1], float)
    back = tip - 9 * direction
    draw.polygon([tuple(tip), tuple(back + 5 * normal), tuple(back - 5 * normal)], fill=fill)


def _dashed(draw, points, fill, width=2, dash=8):
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        length = float(np.hypot(x1 - x0, y1 - y0))
        steps = max(int(length // dash), 1)
        for k in range(0, steps, 2):
            a, b = k / steps, min(k + 1, steps) / steps
            draw.line([(x0 + a * (x1 - x0), y0 + a * (y1 - y0)),
                       (x0 + b * (x1 - x0), y0 + b * (y1 - y0))], fill=fill, width=width)


def _centered(draw, box, text, font, fill=_INK):
    x0, y0, x1, y1 = box
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(((x0 + x1 - (right - left)) / 2, (y0 + y1 - (bottom - top)) / 2 - top), text,
              font=font, fill=fill)


def draw_architecture(arch, bottom_width: int = 4, gf_dim: int | None = None,
                      latent_dim: int = 128) -> Image.Image:
    """A Pillow RGB image of the generator ``arch`` in the style of the paper's Figure 3.

    Args:
        arch: an `Arch`, an alias or a vector string.
        bottom_width: side of the first feature map (4 for CIFAR-10's 32x32 images).
        gf_dim: generator width, shown in the linear layer's box when given.
        latent_dim: size of ``z``.

    Returns:
        An RGB `PIL.Image.Image` sized to fit every cell and skip lane.

    Raises:
        search_space.ArchError: ``arch`` cannot be parsed (a ValueError).
    """
    arch = ss.parse_arch(arch)
    cells, skips = architecture_layout(arch, bottom_width)
    font, small = _font(), _font(_FONT_SIZE - 2)
    rows = max(len(c.ops) for c in cells)
    cell_h = 34 + rows * (_CHIP_H + _CHIP_GAP)
    lanes = len(skips)
    width = 2 * _MARGIN + 2 * (_END_W + _GAP) + len(cells) * (_CELL_W + _GAP) + _END_W
    height = _TOP + cell_h + 30 + lanes * 30 + _MARGIN
    image = Image.new("RGB", (int(width), int(height)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((_MARGIN, 16), f"generator {arch}", font=font, fill=_INK)
    mid = _TOP + cell_h / 2

    x = _MARGIN
    side = bottom_width
    head = f"linear -> {side}x{side}" + (f"x{gf_dim}" if gf_dim else "")
    for label in (f"z ({latent_dim})", head):
        box = (x, mid - 22, x + _END_W, mid + 22)
        draw.rounded_rectangle(box, 8, fill=_CHIP, outline=_FRAME, width=2)
        _centered(draw, box, label, font)
        _arrow(draw, (x + _END_W, mid), (x + _END_W + _GAP - 4, mid))
        x += _END_W + _GAP

    skip_points = {}
    shortcut_text = [_shortcut_label(c) for c in arch.cells]
    for i, cell in enumerate(cells):
        box = (x, _TOP, x + _CELL_W, _TOP + cell_h)
        draw.rounded_rectangle(box, 12, outline=_FRAME, width=3)
        _centered(draw, (x, _TOP - 26, x + _CELL_W, _TOP - 4), cell.title.split(",")[0], font)
        _centered(draw, (x, _TOP + 4, x + _CELL_W, _TOP + 26), cell.title.split(", ")[1], small)
        y = _TOP + 32
        for op in cell.ops:
            chip = (x + 24, y, x + _CELL_W - 44, y + _CHIP_H)
            fill = _ADD if op.startswith("+") else _CHIP
            draw.rounded_rectangle(chip, 6, fill=fill, outline=_FRAME)
            _centered(draw, chip, shortcut_text[i] if op == SHORTCUT_ADD else op, small)
            if op == SKIP_ADD:
                skip_points[i] = (x + 24, y + _CHIP_H / 2)
            if op == SHORTCUT_ADD:
                sx = x + _CELL_W - 22
                draw.line([(x + _CELL_W - 44, _TOP + 40), (sx, _TOP + 40), (sx, y + _CHIP_H / 2)],
                          fill=_FRAME, width=2)
                _arrow(draw, (sx, y + _CHIP_H / 2), (x + _CELL_W - 44, y + _CHIP_H / 2), _FRAME)
            y += _CHIP_H + _CHIP_GAP
        _arrow(draw, (x + _CELL_W, mid), (x + _CELL_W + _GAP - 4, mid))
        x += _CELL_W + _GAP
    cell_x = [_MARGIN + 2 * (_END_W + _GAP) + i * (_CELL_W + _GAP) for i in range(len(cells))]

    for lane, edge in enumerate(skips):
        y_lane = _TOP + cell_h + 30 + lane * 30
        x0 = cell_x[edge.source] + 40 + 24 * lane
        x1 = cell_x[edge.target] + 10 + 5 * lane
        _dashed(draw, [(x0, _TOP + cell_h), (x0, y_lane), (x1, y_lane)], _SKIP)
        _dashed(draw, [(x1, y_lane), (x1, skip_points[edge.target][1])], _SKIP)
        _arrow(draw, (x1, skip_points[edge.target][1]), (x1 + 12, skip_points[edge.target][1]),
               _SKIP)
        draw.text((x0 + 8, y_lane - 16), f"skip cell {edge.source + 1} -> {edge.target + 1}: "
                  f"{edge.label}", font=small, fill=_SKIP)

    side = bottom_width * 2 ** len(cells)
    box = (x, mid - 34, x + _END_W, mid + 34)
    draw.rounded_rectangle(box, 8, fill=_CHIP, outline=_FRAME, width=2)
    _centered(draw, (x, mid - 30, x + _END_W, mid - 2), "BN, ReLU, conv 3x3", small)
    _centered(draw, (x, mid + 2, x + _END_W, mid + 30), f"tanh: {side}x{side}x3", small)
    return image


def save_architecture(arch, path: str, **kwargs) -> str:
    """Draw ``arch`` (see `draw_architecture` for the keyword arguments) into a PNG at ``path``.

    Args:
        arch: an `Arch`, an alias or a vector string.
        path: the PNG file to write.
        **kwargs: ``bottom_width``, ``gf_dim``, ``latent_dim`` of `draw_architecture`.

    Returns:
        ``path``.
    """
    draw_architecture(arch, **kwargs).save(path, format="PNG")
    return path


def architecture_array(arch, **kwargs) -> np.ndarray:
    """The drawing as a uint8 ``[1, H, W, 3]`` array, ready for ``tf.summary.image``.

    Args:
        arch: an `Arch`, an alias or a vector string.
        **kwargs: ``bottom_width``, ``gf_dim``, ``latent_dim`` of `draw_architecture`.

    Returns:
        The image with a leading batch axis of 1.
    """
    return np.asarray(draw_architecture(arch, **kwargs), np.uint8)[None]
