import collections
import json
import random
import subprocess
import sys

import pytest

from autogan_tf import search_space as ss


def test_paper_best_architecture_round_trips():
    arch = ss.parse_arch("1 0 1 1 1 0 0 1 1 1 0 1 0 3")
    assert arch.num_cells == 3
    assert str(arch) == "1 0 1 1 1 0 0 1 1 1 0 1 0 3"
    assert ss.parse_arch("autogan_cifar10_a") == arch
    assert ss.parse_arch(arch.to_list()) == arch
    assert ss.parse_arch("[1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 3]") == arch
    c1, c2, c3 = arch.cells
    assert (c1.conv_type, c1.norm_type, c1.up_type, c1.shortcut) == ("pre", "none", "nearest", 1)
    assert (c2.up_type, c2.shortcut, c2.skip_sources) == ("bilinear", 1, (0,))
    assert (c3.up_type, c3.shortcut, c3.skip_sources) == ("nearest", 0, (0, 1))


def _official_skip_flags(num_skip_in, mask):
    """The official code's decoding: reversed binary string written from the end."""
    flags = [0] * num_skip_in
    for i, bit in enumerate(bin(mask)[2:][::-1]):
        flags[-(i + 1)] = int(bit)
    return flags


@pytest.mark.parametrize("index,mask", [(1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (2, 3),
                                        (3, 5), (3, 6)])
def test_skip_mask_bit_order_matches_official(index, mask):
    cell = ss.CellSpec(index, 1, 0, 0, 0, mask)
    flags = _official_skip_flags(index, mask)
    assert cell.skip_sources == tuple(i for i, f in enumerate(flags) if f)


def test_json_file(tmp_path):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({"arch": [1, 0, 1, 1, 1, 0, 0, 1, 1]}))
    assert str(ss.parse_arch(str(path))) == "1 0 1 1 1 0 0 1 1"
    path.write_text(json.dumps([0, 2, 2, 0]))
    assert ss.parse_arch(str(path)).num_cells == 1
    path.write_text("{not json")
    with pytest.raises(ss.ArchError, match="not valid JSON"):
        ss.parse_arch(str(path))
    with pytest.raises(ss.ArchError, match="does not exist"):
        ss.parse_arch(str(tmp_path / "missing.json"))


@pytest.mark.parametrize("text,message", [
    ("1 0 3 1", r"cell 1: field 'up' is 3; allowed 0\.\.2"),
    ("2 0 1 1", r"cell 1: field 'conv' is 2; allowed 0\.\.1"),
    ("1 0 1 1 1 3 0 1 1", r"cell 2: field 'norm' is 3"),
    ("1 0 1 1 1 0 0 1 2", r"cell 2: field 'skip_mask' is 2; allowed 0\.\.1"),
    ("1 0 1 1 1 0 0 1 1 1 0 1 0 4", r"cell 3: field 'skip_mask' is 4; allowed 0\.\.3"),
    ("1 0 1 1 1", "fits no number of cells"),
    ("1 0 x 1", "'x' is not an integer"),
    ("", "empty architecture"),
    ("autogan_cifar10_z", "neither a known alias"),
    ("1 0 1 -1", "field 'shortcut' is -1"),
])
def test_errors_name_cell_and_field(text, message):
    with pytest.raises(ss.ArchError, match=message):
        ss.parse_arch(text)


def test_num_cells_mismatch():
    with pytest.raises(ss.ArchError, match="has 3 cells; this model has 2"):
        ss.parse_arch("autogan_cifar10_a", num_cells=2)


def test_count_matches_enumeration_and_closed_form():
    assert ss.count_archs(1) == 2 * 3 * 3 * 2
    assert ss.count_archs(3) == 36 ** 3 * 2 * 4
    assert sum(1 for _ in ss.enumerate_archs(2)) == ss.count_archs(2) == 36 * 36 * 2
    assert len(set(map(str, ss.enumerate_archs(2)))) == ss.count_archs(2)


def test_sample_is_uniform_per_decision():
    rng = random.Random(0)
    n = 6000
    counts = collections.Counter(ss.sample_arch(3, rng).cells[2].skip_mask for _ in range(n))
    assert set(counts) == {0, 1, 2, 3}
    for value in counts.values():  # 4 sigma band around n/4
        assert abs(value - n / 4) < 4 * (n * 0.25 * 0.75) ** 0.5


def test_padded_vector():
    arch = ss.parse_arch("1 0 1 1")
    assert arch.padded(3) == [1, 0, 1, 1] + [0] * 10
    with pytest.raises(ss.ArchError):
        ss.parse_arch("autogan_cifar10_a").padded(2)


def test_cell_op_table_is_consistent_and_free_of_tensorflow():
    """One op table per cell: unique names, known fields, and no TensorFlow to read it."""
    for index in range(4):
        ops = ss.cell_ops(index)
        assert len({op.name for op in ops}) == len(ops) == 12 + 2 * index
        assert all(field in ss.FIELDS for op in ops for field, _ in op.requires)
        assert {op.factor for op in ops if op.kind == "deconv_chain"} == {
            ss.skip_factor(index, source) for source in range(index)}
    code = ("import sys, autogan_tf.search_space as ss; ss.cell_ops(3); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_allowed_choices_keep_the_official_indices():
    full = ss.allowed_choices("")
    assert full == {"conv": (0, 1), "norm": (0, 1, 2), "up": (0, 1, 2), "shortcut": (0, 1)}
    allowed = ss.allowed_choices(" norm=in , up=Deconv,shortcut=false")
    assert allowed == {"conv": (0, 1), "norm": (0, 1), "up": (0, 1), "shortcut": (1,)}
    assert ss.decision_choices(2, allowed) == ((0, 1), (0, 1), (0, 1), (1,), (0, 1, 2, 3))
    no_in = ss.allowed_choices("norm=in")
    assert ss.arch_is_allowed(ss.parse_arch("1 0 1 1 1 0 0 1 1 1 0 1 0 3"), no_in)
    assert not ss.arch_is_allowed(ss.parse_arch("1 2 1 1 1 0 0 1 1 1 0 1 0 3"), no_in)
    assert not ss.arch_is_allowed(ss.parse_arch("1 0 1 1 1 0 0 1 1 1 0 1 0 3"), allowed)


def test_the_printed_form_with_bars_between_cells_parses():
    """A vector copied with ``|`` between its cells is the same architecture."""
    assert ss.parse_arch("1 0 1 1 | 1 0 0 1 1 | 1 0 1 0 3") == ss.parse_arch("autogan_cifar10_a")
    with pytest.raises(ss.ArchError, match="not an integer"):
        ss.parse_arch("1 0 1 1 / 1 0 0 1 1")
