"""The AutoGAN generator search space as plain data (no TensorFlow).

A generator has ``num_cells`` cells. Each cell is described by four choices
and, for every cell after the first, a bit mask of skip-ins from earlier
cells. The flat vector uses the layout of the official AutoGAN code: per cell
``C N U SC`` followed, for cells after the first, by the skip mask. The paper's
best CIFAR-10 generator is ``1 0 1 1  1 0 0 1 1  1 0 1 0 3``.

Skip-mask bits follow the official code: bit 0 (the least significant) is the
cell immediately before this one, bit 1 the cell before that, and so on. So
for cell 3, mask 1 means "from cell 2", mask 2 "from cell 1", 3 "both".

This module also owns what the choices mean to the model: the choice
enumerations (``CONV_TYPES`` ... and their indices ``CONV_PRE`` ...) and the
table of a cell's ops with weights (`cell_ops`), from which the Keras layers
build a cell, `models.generator_macs` prices it and `official.weights` maps it
to the official PyTorch names. Adding a cell op starts here.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import random
from typing import Iterable, Iterator, Sequence

from autogan_tf import errors

# The four choices of a cell; a choice is stored as the index of its name here.
CONV_TYPES = ("post", "pre")  # C: 0 post-activation, 1 pre-activation
NORM_TYPES = ("none", "bn", "in")  # N: none, batch norm, instance norm
UP_TYPES = ("bilinear", "nearest", "deconv")  # U: upsampling kind
SHORTCUT_TYPES = (False, True)  # SC: in-cell shortcut

CONV_POST, CONV_PRE = CONV_TYPES.index("post"), CONV_TYPES.index("pre")
NORM_NONE, NORM_BN, NORM_IN = (NORM_TYPES.index("none"), NORM_TYPES.index("bn"),
                               NORM_TYPES.index("in"))
UP_BILINEAR, UP_NEAREST, UP_DECONV = (UP_TYPES.index("bilinear"), UP_TYPES.index("nearest"),
                                      UP_TYPES.index("deconv"))
SHORTCUT_ON = SHORTCUT_TYPES.index(True)

FIELDS = ("conv", "norm", "up", "shortcut")
FIELD_CHOICES = {"conv": CONV_TYPES, "norm": NORM_TYPES, "up": UP_TYPES,
                 "shortcut": SHORTCUT_TYPES}
FIELD_SIZES = {field: len(choices) for field, choices in FIELD_CHOICES.items()}

ALIASES = {
    # Gong et al. 2019, Fig. 3 / official models/autogan_cifar10_{a,b,c}.py.
    "autogan_cifar10_a": "1 0 1 1 1 0 0 1 1 1 0 1 0 3",
    "autogan_cifar10_b": "1 0 1 1 1 0 1 1 1 1 0 1 1 3",
    "autogan_cifar10_c": "1 1 1 1 1 0 0 1 1 1 0 1 0 3",
}


class ArchError(errors.UserError):
    """An architecture vector that is malformed or out of range."""


def cell_vector_length(cell_index: int) -> int:
    """Integers describing cell ``cell_index`` (0-based): 4, plus a skip mask after cell 0.

    Args:
      cell_index: the cell's position (0-based).
    """
    return 4 if cell_index == 0 else 5


def vector_length(num_cells: int) -> int:
    """Length of the flat vector of a generator with ``num_cells`` cells.

    Args:
      num_cells: cells of the generator.

    Returns:
      ``5 * num_cells - 1`` (the first cell has no skip mask).
    """
    return 5 * num_cells - 1


def cell_vector_slice(cell_index: int) -> slice:
    """Where cell ``cell_index``'s integers sit in the flat vector: ``C N U SC`` then, after
    cell 0, the skip mask.

    Args:
      cell_index: the cell's position (0-based).
    """
    start = sum(cell_vector_length(i) for i in range(cell_index))
    return slice(start, start + cell_vector_length(cell_index))


def output_size(bottom_width: int, stage: int) -> int:
    """Image side length after ``stage + 1`` cells: every cell doubles the side.

    Args:
      bottom_width: side of the generator's first feature map.
      stage: the last active cell (0-based).
    """
    return bottom_width * 2 ** (stage + 1)


def check_stage(stage, num_cells: int) -> int:
    """``stage`` made concrete: None means every cell (``num_cells - 1``).

    A stage is the index of the last active cell; the supernet and the discriminator both
    take one, and a stage out of range would silently drop or invent cells.

    Args:
      stage: a Python int in ``0 .. num_cells - 1``, or None.
      num_cells: cells of the full generator.

    Raises:
      ValueError: ``stage`` is not such an int.
    """
    stage = num_cells - 1 if stage is None else stage
    if not isinstance(stage, int) or isinstance(stage, bool) or not 0 <= stage < num_cells:
        raise ValueError(f"stage must be an int in 0..{num_cells - 1}, got {stage!r}")
    return stage


def decision_sizes(cell_index: int) -> tuple[int, ...]:
    """Number of options of each decision of one cell, in vector order.

    The controller makes one categorical decision per entry, so these are the sizes of its
    output heads.

    Args:
      cell_index: the cell's position (0-based).

    Returns:
      ``(2, 3, 3, 2)`` for the four choices, plus ``2 ** cell_index`` skip masks after cell 0.
    """
    sizes = tuple(FIELD_SIZES[field] for field in FIELDS)
    return sizes if cell_index == 0 else sizes + (2 ** cell_index,)


def allowed_choices(excluded: str = "") -> dict[str, tuple[int, ...]]:
    """The choice indices a search may take per field, leaving out ``excluded``.

    A search space restricted this way still produces vectors of the official encoding
    (indices keep their meaning); only the sampler never draws the excluded values.

    Args:
      excluded: comma-separated ``field=choice`` pairs (``--excluded_choices``), e.g.
        ``"norm=in"`` or ``"norm=in,up=deconv"``; fields are `FIELDS`, choices their names
        in `FIELD_CHOICES` (``true``/``false`` for ``shortcut``). Empty: nothing excluded.

    Returns:
      ``{field: allowed indices}`` for every field of `FIELDS`, in index order.

    Raises:
      ArchError: a malformed pair, an unknown field or choice, or every choice of a
        field excluded.
    """
    allowed = {field: list(range(FIELD_SIZES[field])) for field in FIELDS}
    for pair in filter(None, (p.strip() for p in str(excluded).split(","))):
        field, equals, choice = pair.partition("=")
        if not equals:
            raise ArchError(f"--excluded_choices: expected field=choice, got {pair!r}")
        field, choice = field.strip(), choice.strip().lower()
        if field not in FIELD_CHOICES:
            raise ArchError(f"--excluded_choices: unknown field {field!r} in {pair!r} "
                            f"(fields: {', '.join(FIELDS)})")
        names = [str(c).lower() for c in FIELD_CHOICES[field]]
        if choice not in names:
            raise ArchError(f"--excluded_choices: {field} has no choice {choice!r} "
                            f"(choices: {', '.join(names)})")
        index = names.index(choice)
        if index in allowed[field]:
            allowed[field].remove(index)
        if not allowed[field]:
            raise ArchError(f"--excluded_choices leaves no choice for {field}")
    return {field: tuple(indices) for field, indices in allowed.items()}


def decision_choices(cell_index: int, allowed: dict | None = None) -> tuple[tuple[int, ...], ...]:
    """The allowed options of each decision of one cell (`decision_sizes` order).

    Args:
      cell_index: the cell's position (0-based).
      allowed: `allowed_choices` output; None allows everything. Skip masks are never
        restricted.
    """
    allowed = allowed or allowed_choices()
    skips = () if cell_index == 0 else (tuple(range(2 ** cell_index)),)
    return tuple(allowed[field] for field in FIELDS) + skips


def decision_options(cell_indices, excluded: str = "") -> list[tuple[int, tuple[int, ...]]]:
    """``(options, allowed options)`` of every decision of ``cell_indices``, in order: what a
    sampler over those cells draws from (the controller's heads, random search).

    Args:
      cell_indices: consecutive cells (0-based).
      excluded: ``--excluded_choices`` text (see `allowed_choices`).

    Raises:
      ArchError: ``excluded`` is invalid.
    """
    allowed = allowed_choices(excluded)
    return [pair for index in cell_indices
            for pair in zip(decision_sizes(index), decision_choices(index, allowed))]


def arch_is_allowed(arch: "Arch", allowed: dict) -> bool:
    """Whether every cell of ``arch`` takes only ``allowed`` choices (`allowed_choices`)."""
    return all(getattr(cell, field) in allowed[field] for cell in arch.cells for field in FIELDS)


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """The choices of one generator cell; ``index`` is 0-based.

    Every field is an index into its choice tuple (`CONV_TYPES` ...), validated on creation.

    Args:
      index: the cell's position (0-based).
      conv: index into `CONV_TYPES`.
      norm: index into `NORM_TYPES`.
      up: index into `UP_TYPES`.
      shortcut: index into `SHORTCUT_TYPES` (1: in-cell shortcut).
      skip_mask: bit mask of skip-ins, below ``2 ** index``; bit 0 is the previous cell.

    Raises:
      ArchError: a field out of range or not an integer.
    """

    index: int
    conv: int
    norm: int
    up: int
    shortcut: int
    skip_mask: int = 0

    def __post_init__(self):
        where = f"cell {self.index + 1}"
        for field in FIELDS:
            value = getattr(self, field)
            size = FIELD_SIZES[field]
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < size:
                raise ArchError(
                    f"{where}: field '{field}' is {value!r}; allowed 0..{size - 1}")
        limit = 2 ** self.index
        if not isinstance(self.skip_mask, int) or not 0 <= self.skip_mask < limit:
            allowed = "0 (the first cell has no skip-ins)" if self.index == 0 else f"0..{limit - 1}"
            raise ArchError(f"{where}: field 'skip_mask' is {self.skip_mask!r}; allowed {allowed}")

    @property
    def conv_type(self) -> str:
        """``"post"`` or ``"pre"`` (activation)."""
        return CONV_TYPES[self.conv]

    @property
    def norm_type(self) -> str:
        """``"none"``, ``"bn"`` or ``"in"``."""
        return NORM_TYPES[self.norm]

    @property
    def up_type(self) -> str:
        """``"bilinear"``, ``"nearest"`` or ``"deconv"``."""
        return UP_TYPES[self.up]

    @property
    def skip_sources(self) -> tuple[int, ...]:
        """0-based indices of the earlier cells whose features are added in, ascending."""
        return tuple(src for src in range(self.index)
                     if (self.skip_mask >> (self.index - 1 - src)) & 1)

    def to_list(self) -> list[int]:
        """The cell's integers in vector order: ``C N U SC``, then the skip mask after cell 0."""
        values = [self.conv, self.norm, self.up, self.shortcut]
        return values if self.index == 0 else values + [self.skip_mask]


@dataclasses.dataclass(frozen=True)
class Arch:
    """A whole generator architecture (possibly a prefix of cells, during search).

    ``str(arch)`` is the official space-separated vector.

    Args:
      cells: the cells in order, ``cells[i].index == i``.

    Raises:
      ArchError: no cells, or cells out of order.
    """

    cells: tuple[CellSpec, ...]

    def __post_init__(self):
        if not self.cells:
            raise ArchError("an architecture needs at least one cell")
        for i, cell in enumerate(self.cells):
            if cell.index != i:
                raise ArchError(f"cell {i + 1} has index {cell.index}")

    @property
    def num_cells(self) -> int:
        """How many cells the architecture has."""
        return len(self.cells)

    def to_list(self) -> list[int]:
        """The flat vector, every cell's integers in order."""
        return [v for cell in self.cells for v in cell.to_list()]

    def __str__(self) -> str:
        return " ".join(str(v) for v in self.to_list())

    def padded(self, num_cells: int) -> list[int]:
        """The vector extended with zeros to ``num_cells`` cells (the supernet's input).

        Args:
          num_cells: the length to pad to, in cells.

        Raises:
          ArchError: the architecture already has more cells.
        """
        if num_cells < self.num_cells:
            raise ArchError(f"architecture has {self.num_cells} cells, more than {num_cells}")
        return self.to_list() + [0] * (vector_length(num_cells) - len(self.to_list()))

    @classmethod
    def from_list(cls, values: Sequence[int], num_cells: int | None = None) -> "Arch":
        """An `Arch` from its flat vector.

        Integral floats and numpy integers are accepted (vectors come back from JSON and
        tensors); other non-integers are rejected.

        Args:
          values: the integers, ``C N U SC`` for the first cell then ``C N U SC mask`` for
            each further one.
          num_cells: the expected number of cells; None infers it from the length.

        Returns:
          The architecture.

        Raises:
          ArchError: a non-integer, a length that fits no (or not ``num_cells``) cells, or a
            value out of range.
        """
        values = list(values)
        for pos, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int):
                try:
                    if float(v) != int(v):
                        raise ValueError
                    v = int(v)
                except (TypeError, ValueError, OverflowError):
                    raise ArchError(f"position {pos + 1}: {v!r} is not an integer") from None
                values[pos] = v
        if num_cells is None:
            if (len(values) + 1) % 5:
                raise ArchError(
                    f"a vector of {len(values)} integers fits no number of cells; "
                    "expected 4 for one cell plus 5 for each further cell (4, 9, 14, ...)")
            num_cells = (len(values) + 1) // 5
        elif len(values) != vector_length(num_cells):
            raise ArchError(
                f"expected {vector_length(num_cells)} integers for {num_cells} cells, "
                f"got {len(values)}")
        cells, pos = [], 0
        for i in range(num_cells):
            n = cell_vector_length(i)
            chunk = values[pos:pos + n]
            pos += n
            cells.append(CellSpec(i, *chunk))
        return cls(tuple(cells))

    @classmethod
    def parse(cls, value, num_cells: int | None = None) -> "Arch":
        """An `Arch` from an alias, a string of ints, a list, or a JSON file path.

        A JSON file may hold a list of ints, or an object with key ``arch``.

        Args:
          value: an `Arch` (returned as is), an alias of `ALIASES`, a string of integers
            (spaces, commas, brackets or the ``|`` that separates cells in printed vectors
            between them), a path to a JSON file, or an iterable of integers.
          num_cells: the number of cells the architecture must have; None accepts any.

        Returns:
          The architecture.

        Raises:
          ArchError: ``value`` cannot be read, or has another number of cells.
        """
        if isinstance(value, Arch):
            arch = value
        elif isinstance(value, str):
            text = value.strip()
            if text in ALIASES:
                arch = cls.parse(ALIASES[text])
            elif text.endswith(".json") or os.path.isfile(text):
                arch = cls._from_json_file(text)
            else:
                tokens = text
                for separator in ",[]|":
                    tokens = tokens.replace(separator, " ")
                tokens = tokens.split()
                if not tokens:
                    raise ArchError("empty architecture; give integers like "
                                    f"'{ALIASES['autogan_cifar10_a']}' or an alias: "
                                    f"{', '.join(sorted(ALIASES))}")
                ints = []
                for tok in tokens:
                    try:
                        ints.append(int(tok))
                    except ValueError:
                        raise ArchError(
                            f"'{tok}' is not an integer, and '{text}' is neither a known alias "
                            f"({', '.join(sorted(ALIASES))}) nor an existing JSON file") from None
                arch = cls.from_list(ints)
        elif isinstance(value, Iterable):
            arch = cls.from_list(list(value))
        else:
            raise ArchError(f"cannot read an architecture from {value!r}")
        if num_cells is not None and arch.num_cells != num_cells:
            raise ArchError(f"architecture '{arch}' has {arch.num_cells} cells; "
                            f"this model has {num_cells}")
        return arch

    @classmethod
    def _from_json_file(cls, path: str) -> "Arch":
        if not os.path.isfile(path):
            raise ArchError(f"architecture file {path} does not exist")
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError included
            raise ArchError(f"architecture file {path} is not valid JSON: {e}") from None
        if isinstance(data, dict):
            if "arch" not in data:
                raise ArchError(f"architecture file {path} has no key 'arch'")
            data = data["arch"]
        if not isinstance(data, list):
            raise ArchError(f"architecture file {path} must hold a list of integers")
        return cls.from_list(data)

    def to_json(self) -> str:
        """``{"arch": [...]}`` as JSON text, the file format `parse` reads."""
        return json.dumps({"arch": self.to_list()})


def parse_arch(value, num_cells: int | None = None) -> Arch:
    """Shorthand for `Arch.parse`.

    Args:
      value: an `Arch`, an alias, a string of integers, a JSON file path, or a list.
      num_cells: the number of cells required, or None.

    Returns:
      The `Arch`.

    Raises:
      ArchError: ``value`` is not a valid architecture (of ``num_cells`` cells).
    """
    return Arch.parse(value, num_cells)


def count_archs(num_cells: int = 3) -> int:
    """Size of the search space: 36 choices per cell times 2^i skip masks for cell i.

    Args:
      num_cells: cells of the generator.
    """
    total = 1
    for i in range(num_cells):
        for size in decision_sizes(i):
            total *= size
    return total


def enumerate_archs(num_cells: int = 3) -> Iterator[Arch]:
    """Every architecture with ``num_cells`` cells, in lexicographic vector order.

    Args:
      num_cells: cells of the generator (`count_archs` of them are yielded).

    Yields:
      `Arch` objects.
    """
    ranges = [range(size) for i in range(num_cells) for size in decision_sizes(i)]
    for values in itertools.product(*ranges):
        yield Arch.from_list(values)


def sample_arch(num_cells: int = 3, rng: random.Random | None = None) -> Arch:
    """A uniformly random architecture (every decision independent and uniform).

    Args:
      num_cells: cells of the generator.
      rng: the random source; None uses a fresh unseeded `random.Random`.
    """
    rng = rng or random.Random()
    return Arch.from_list([rng.randrange(size) for i in range(num_cells)
                           for size in decision_sizes(i)])


# -- the ops of a cell -------------------------------------------------------------
OP_KINDS = ("bn", "conv", "deconv", "deconv_chain", "class_affine")


@dataclasses.dataclass(frozen=True)
class CellOp:
    """One op with weights of a generator cell, and the choices that make a cell use it.

    `cell_ops` lists them; every other module reads this table instead of
    parsing op names, so a name means one thing everywhere.

    Attributes:
      name: unique within its cell. Keras names the op's layer after it and
        tracks it as the cell attribute ``op_<name>``, so it is part of every
        checkpoint path: renaming an op breaks existing checkpoints.
      kind: "bn" (batch norm), "conv" (a 'same' convolution), "deconv" (one
        2x2 stride-2 transposed convolution), "deconv_chain" (log2(factor)
        of them in a ``keras.Sequential``, even for factor 2: a skip-in's) or
        "class_affine" (a class-conditional model's per-class scale and shift
        after a batch or instance norm, `conditional.ClassAffine`).
      kernel: the kernel side (0 for batch norm and class affines).
      factor: how many times larger the op's output side is than its input's
        (1 unless the op upsamples).
      requires: ``(field, choice index)`` pairs, e.g. ``(("conv", CONV_PRE),)``;
        the cell uses the op when its `CellSpec` matches every pair...
      skip_source: ...and, when not None, selects the skip-in from this
        earlier cell (0-based).
    """

    name: str
    kind: str
    kernel: int
    factor: int = 1
    requires: tuple[tuple[str, int], ...] = ()
    skip_source: int | None = None

    def __post_init__(self):
        if self.kind not in OP_KINDS:
            raise ValueError(f"op {self.name}: kind {self.kind!r} is not one of {OP_KINDS}")
        for field, choice in self.requires:
            if not 0 <= choice < FIELD_SIZES[field]:
                raise ValueError(f"op {self.name}: no choice {choice} for field {field!r}")

    @property
    def num_deconvs(self) -> int:
        """Transposed convolutions the op runs in a row (0 for batch norm and convs)."""
        return self.factor.bit_length() - 1 if self.kind.startswith("deconv") else 0


def skip_factor(cell_index: int, source: int) -> int:
    """How many times larger cell ``cell_index``'s side is than earlier cell ``source``'s output.

    Args:
      cell_index: the cell adding the skip-in (0-based).
      source: the earlier cell it comes from (0-based).
    """
    return 2 ** (cell_index - source)


def skip_conv_name(source: int) -> str:
    """The 1x1 conv of the skip-in from earlier cell ``source``.

    Args:
      source: the earlier cell (0-based).

    Returns:
      The op's name (part of checkpoint paths).
    """
    return f"skip{source}_conv"


def skip_deconv_name(factor: int) -> str:
    """The transposed convs that upsample a skip-in ``factor`` times (shared by no other).

    Args:
      factor: the upsampling factor (a power of 2).

    Returns:
      The op's name (part of checkpoint paths).
    """
    return f"skip_deconv_x{factor}"


def class_affine_name(prefix: str, norm: str) -> str:
    """The per-class scale and shift after norm ``norm`` ("bn" or "in") of block ``prefix``.

    Args:
      prefix: the block's op prefix, e.g. ``"pre1"`` (or ``""`` for the output head's).
      norm: the norm it follows.

    Returns:
      The op's name (part of checkpoint paths).
    """
    return f"{prefix}_{norm}_class" if prefix else f"{norm}_class"


def _block_ops(block: int, upsamples: bool, conditional: bool) -> list[CellOp]:
    """The ops of block ``block`` (1 or 2) for each conv type: norm, [class affines,]
    [deconv,] 3x3 conv."""
    ops = []
    for conv_type in CONV_TYPES:
        prefix = f"{conv_type}{block}"
        conv = (("conv", CONV_TYPES.index(conv_type)),)
        ops.append(CellOp(f"{prefix}_bn", "bn", 0, requires=conv + (("norm", NORM_BN),)))
        if conditional:
            for norm in ("bn", "in"):
                ops.append(CellOp(class_affine_name(prefix, norm), "class_affine", 0, requires=(
                    conv + (("norm", NORM_TYPES.index(norm)),))))
        if upsamples:
            ops.append(CellOp(f"{prefix}_deconv", "deconv", 2, 2,
                              requires=conv + (("up", UP_DECONV),)))
        ops.append(CellOp(f"{prefix}_conv", "conv", 3, requires=conv))
    return ops


@functools.lru_cache(maxsize=None)
def cell_ops(cell_index: int, conditional: bool = False) -> tuple[CellOp, ...]:
    """Every op with weights cell ``cell_index`` (0-based) can use: the supernet's cell.

    Two blocks (the first upsamples), the shortcut, and for each earlier cell
    a skip-in: a 1x1 conv and, for deconv upsampling, a chain of deconvs.
    A `CellSpec` uses the ops whose ``requires`` and ``skip_source`` it meets.

    Args:
      cell_index: the cell's position (0-based).
      conditional: a class-conditional cell: each batch and instance norm is
        followed by its own per-class scale and shift (and the batch norm loses
        its shared one). An unconditional cell's ops and names are unchanged.

    Returns:
      The ops, in a fixed order (cached: the same tuple on every call).
    """
    shortcut = (("shortcut", SHORTCUT_ON),)
    ops = (_block_ops(1, upsamples=True, conditional=bool(conditional))
           + _block_ops(2, upsamples=False, conditional=bool(conditional))) + [
        CellOp("sc_deconv", "deconv", 2, 2, requires=shortcut + (("up", UP_DECONV),)),
        CellOp("sc_conv", "conv", 1, requires=shortcut),
    ]
    for source in range(cell_index):
        ops.append(CellOp(skip_conv_name(source), "conv", 1, skip_source=source))
        factor = skip_factor(cell_index, source)
        ops.append(CellOp(skip_deconv_name(factor), "deconv_chain", 2, factor,
                          requires=(("up", UP_DECONV),), skip_source=source))
    return tuple(ops)


@functools.lru_cache(maxsize=None)
def cell_op_table(cell_index: int, conditional: bool = False) -> dict[str, CellOp]:
    """`cell_ops` of cell ``cell_index`` by name (do not modify: it is shared).

    Args:
      cell_index: the cell's position (0-based).
      conditional: the ops of a class-conditional cell (`cell_ops`).
    """
    return {op.name: op for op in cell_ops(cell_index, bool(conditional))}
