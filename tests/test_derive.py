"""Ranking the derived architectures: by IS as the paper does, or by FID."""

import json
import re

import pytest

from autogan_tf import errors
from autogan_tf.search import derive

ROWS = [
    {"rank": 0, "is_mean": 7.1, "fid": 20.0},
    {"rank": 1, "is_mean": 7.9, "fid": 25.0},  # best IS, worse FID
    {"rank": 2, "is_mean": None, "fid": 15.0},  # never scored by IS
    {"rank": 3, "is_mean": 7.1, "fid": 18.0},  # ties rank 0 on IS, better FID
    {"rank": 4, "is_mean": 6.0, "fid": None},
]


def order(select_by):
    return [r["rank"] for r in sorted(ROWS, key=lambda r: derive.rank_key(r, select_by))]


def test_is_ranks_highest_first_ties_broken_by_fid_missing_last():
    assert order("is") == [1, 3, 0, 4, 2]


def test_fid_ranks_lowest_first_missing_last():
    assert order("fid") == [2, 3, 0, 1, 4]


def test_unknown_selection_is_a_user_error(tmp_path):
    with pytest.raises(errors.UserError, match="--select_by must be one of"):
        derive.derive(str(tmp_path / "r.json"), str(tmp_path), {}, select_by="kid")


def test_distinct_archs_keeps_the_first_of_each_with_its_rank():
    top = [{"arch": "a", "reward": 3.0}, {"arch": "b", "reward": 2.5},
           {"arch": "a", "reward": 2.4}, {"arch": "c", "reward": 2.0}, {"arch": "b", "reward": 1.0}]
    assert derive.distinct_archs(top) == [{"arch": "a", "reward": 3.0, "rank": 0},
                                          {"arch": "b", "reward": 2.5, "rank": 1},
                                          {"arch": "c", "reward": 2.0, "rank": 3}]
    assert "rank" not in top[0]  # the caller's entries are left as they were


def test_a_derive_result_is_read_as_its_ranking(tmp_path):
    """``autogan-train --search_result=derive_result.json`` trains derive's pick."""
    path = tmp_path / "derive_result.json"
    rows = [{"rank": 2, "arch": "1 0 1 1", "search_reward": 1.5, "is_mean": 3.0},
            {"rank": 0, "arch": "0 1 2 0", "search_reward": 2.0, "is_mean": 2.0}]
    path.write_text(json.dumps({"best": rows[0], "archs": rows}))
    assert derive.top_arch(str(path)) == "1 0 1 1"
    assert derive.top_arch(str(path), rank=1) == "0 1 2 0"


@pytest.mark.parametrize("recorded, requested, want, said", [
    ({"config": {"conditional": True}, "top_archs": []}, None, True,
     "comes from a class-conditional search: training with --conditional"),
    ({"config": {"conditional": True}, "top_archs": []}, False, False,
     "--noconditional: --search_result=.* comes from a class-conditional search; training its "
     "architectures unconditionally as asked"),
    ({"conditional": False, "archs": []}, True, True,  # a derive_result.json
     "--conditional: .* comes from an unconditional search; training its architectures "
     "class-conditionally as asked"),
    ({"config": {"conditional": False}, "top_archs": []}, None, False, None),
    ({"top_archs": []}, None, None, None),  # an older result: the default stays
    ({"top_archs": []}, True, True, None),
])
def test_training_keeps_the_searchs_conditional_setting_unless_told(
        tmp_path, caplog, recorded, requested, want, said):
    path = tmp_path / "search_result.json"
    path.write_text(json.dumps(recorded))
    with caplog.at_level("INFO", logger="absl"):  # another test may have quietened absl
        assert derive.carry_conditional(str(path), requested) is want
    messages = " ".join(r.getMessage() for r in caplog.records)
    if said:
        assert re.search(said, messages), messages
    else:
        assert "conditional" not in messages
